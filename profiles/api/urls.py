"""Routes of SPEC §5 under /api/v1/, and the schema. Each answers with or without a trailing
slash (no redirect)."""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from profiles.api import views
from profiles.api.routing import DM, ID, route_patterns

SELECTOR = rf"{DM}/user_points/(?P<selector>[^/]+)"
IMPORT = rf"{DM}/document_imports/(?P<import_id>{ID})"
EXECUTION = rf"{IMPORT}/executions/(?P<execution_id>{ID})"

ROUTES = [
    (rf"{DM}/compartments", views.CompartmentListView, "compartments"),
    (rf"{DM}/compartments/(?P<compartment_id>{ID})", views.CompartmentDetailView, "compartment"),
    (SELECTOR, views.UserPointView, "user-point"),
    (rf"{SELECTOR}/user_profiles", views.UserPointProfilesView, "user-point-profiles"),
    (
        rf"{SELECTOR}/user_profiles/compartment_id=(?P<compartment_id>[^/]+)",
        views.ProfileView,
        "profile",
    ),
    (
        rf"{SELECTOR}/user_profiles/compartment_id=(?P<compartment_id>[^/]+)"
        r"/user_account_id=(?P<user_account_id>[^/]+)",
        views.ProfileView,
        "account-profile",
    ),
    (rf"{DM}/user_profiles", views.ProfileSearchView, "profile-search"),
    (rf"{DM}/document_imports", views.DocumentImportListView, "document-imports"),
    (IMPORT, views.DocumentImportDetailView, "document-import"),
    (rf"{IMPORT}/executions", views.ExecutionListView, "executions"),
    (EXECUTION, views.ExecutionDetailView, "execution"),
    (rf"{EXECUTION}/errors", views.ExecutionErrorsView, "execution-errors"),
    (rf"{EXECUTION}/cancel", views.ExecutionCancelView, "execution-cancel"),
]

urlpatterns = [
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="api-schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *route_patterns(ROUTES),
]
