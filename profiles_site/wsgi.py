"""The WSGI application gunicorn serves (`profiles_site.wsgi:application`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "profiles_site.settings")


def encoded_trailing_slash_kept(django_application):
    """An API path that ends in an encoded slash (`…/email_hash=del%2F`) names the id `del/`,
    not `del` with the route's optional trailing slash: WSGI servers decode `%2F` before the
    app sees the path, so both arrive as `…=del/`. Where the server also hands over the path as
    sent (gunicorn's `RAW_URI`), the route's own slash is added after the encoded one, so the
    id keeps it. Elsewhere (Django's development server) the portable form `del%2F/` does the
    same (docs/rules.md, Selectors)."""

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.endswith("/") and path.startswith("/api/"):
            sent = environ.get("RAW_URI", "").partition("?")[0]
            if sent[-3:].lower() == "%2f":
                environ["PATH_INFO"] = path + "/"
        return django_application(environ, start_response)

    return application


application = encoded_trailing_slash_kept(get_wsgi_application())
