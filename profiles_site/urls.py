from django.contrib import admin
from django.urls import include, path, re_path

from profiles.api.views import NotFoundView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("profiles.api.urls")),
    path("api/v1/", include("imports.api.urls")),
    # After every app's routes: anything else under /api/v1/ is the JSON 404, for every method.
    # [\s\S], not `.`: a path holding a newline (%0A) is answered in JSON too.
    re_path(r"^api/v1/[\s\S]*$", NotFoundView.as_view()),
]
