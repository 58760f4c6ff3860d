"""The profile routes (`…/user_points/{selector}/user_profiles/compartment_id={c}[/user_account_id=
{a}]`): a token's plain GET that finds its profile is answered here, every other request by
`ProfileView`.

The read is the API's hot path, and DRF's request and response machinery was a third of its
Python time (py-spy of gunicorn workers under bench/api_bench.py). Here it calls the functions
`ProfileView` calls (the token's authentication and its rate limit, the datamart's scope, the
address's parsing, `profile_get`, the profile object, the envelope), and answers with the same
bytes and headers. Whatever it would answer otherwise (an error, a 404, a
staff session, a query parameter, HEAD) it passes to `ProfileView`; the authentication keeps
its outcome on the request, so a request passed on is counted once against the rate limit and
a bad token recorded once. A test holds both paths' answers equal, errors included
(tests/profiles/api/test_profile_route.py).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException

from profiles.api.authentication import ApiTokenAuthentication
from profiles.api.paths import parse_compartment_id, parse_selector, parse_user_account_id
from profiles.api.renderers import EnvelopeJSONRenderer
from profiles.api.serializers import profile_object
from profiles.api.throttling import ApiTokenRateThrottle
from profiles.api.views import ProfileView
from profiles.profile_read import profile_get
from profiles.selectors import datamart_get_for_caller

_profile_view = ProfileView.as_view()
_renderer = EnvelopeJSONRenderer()


def _view_headers() -> dict[str, str]:
    """The headers DRF adds to ProfileView's answers: its renderers (JSON, and the browsable
    API for staff) and its methods, HEAD among them once set up as for a request."""
    view = ProfileView(**_profile_view.initkwargs)
    view.setup(HttpRequest())
    return {"Vary": "Accept", "Allow": ", ".join(view.allowed_methods)}


_HEADERS = _view_headers()


@csrf_exempt  # as DRF's views are: a session's writes are checked for CSRF by ProfileView
def profile_route(request: HttpRequest, **route) -> HttpResponse:
    meta = request.META
    if (
        request.method == "GET"
        and "HTTP_AUTHORIZATION" in meta
        and not meta.get("QUERY_STRING")
        and "HTTP_TRANSFER_ENCODING" not in meta
    ):
        response = profile_read_by_token(request, **route)
        if response is not None:
            return response
    return _profile_view(request, **route)


# The schema generator (drf-spectacular) documents the routes from ProfileView.
profile_route.cls = ProfileView
profile_route.initkwargs = _profile_view.initkwargs


def profile_read_by_token(
    request: HttpRequest,
    *,
    dm: str,
    selector: str,
    compartment_id: str,
    user_account_id: str | None = None,
) -> HttpResponse | None:
    """The 200 answer of a token's GET of a profile; None when ProfileView must answer.

    The authentication's round trip to the cache is sent first, and the profile's query runs
    while the cache answers: the worker waits once, not twice. The row is rendered only once
    the token is known to read this datamart, within its rate.
    """
    authentication = ApiTokenAuthentication().begin(request)
    try:
        profile = profile_get(
            datamart_id=int(dm),
            selector=parse_selector(selector),
            compartment_id=parse_compartment_id(compartment_id),
            user_account_id=(
                None if user_account_id is None else parse_user_account_id(user_account_id)
            ),
        )
    except APIException:  # an address that does not parse: ProfileView says so
        profile = None
    try:
        authenticated = authentication()
    except APIException:
        return None
    if profile is None or authenticated is None:
        return None
    _, token = authenticated
    if not ApiTokenRateThrottle().token_allowed(request, token=token):
        return None
    if datamart_get_for_caller(datamart_id=int(dm), token_datamart=token.datamart) is None:
        return None
    response = HttpResponse(
        _renderer.render(profile_object(profile)),
        content_type=_renderer.media_type,
    )
    for name, value in _HEADERS.items():
        response[name] = value
    return response
