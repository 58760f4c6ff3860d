"""Routes of SPEC §5 under /api/v1/ for compartments, user points and profiles, and the schema.
Each answers with or without a trailing slash (no redirect)."""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from profiles.api import erasure, profile_route, root, views
from profiles.api.routing import DM, ID, route_patterns

# A selector or an account id may hold `/` (sent as %2F, which the server decodes before
# routing): each takes what lies between the fixed words around it, so the routes that end in a
# fixed word come before the user point's own route (`…/history` is a point's history).
SELECTOR = rf"{DM}/user_points/(?P<selector>.+?)"
PROFILE = rf"{SELECTOR}/user_profiles/compartment_id=(?P<compartment_id>[^/]+)"
ROUTES = [
    # The profile routes first: the API's hot read (see routing.py).
    (
        rf"{PROFILE}/user_account_id=(?P<user_account_id>.+?)",
        profile_route.profile_route,
        "account-profile",
    ),
    (PROFILE, profile_route.profile_route, "profile"),
    (rf"{DM}/compartments", views.CompartmentListView, "compartments"),
    (rf"{DM}/compartments/(?P<compartment_id>{ID})", views.CompartmentDetailView, "compartment"),
    (rf"{SELECTOR}/user_profiles", views.UserPointProfilesView, "user-point-profiles"),
    (rf"{SELECTOR}/history", erasure.UserPointHistoryView, "user-point-history"),
    (rf"{SELECTOR}/erase", erasure.UserPointEraseView, "user-point-erase"),
    (SELECTOR, views.UserPointView, "user-point"),
    (rf"{DM}/user_profiles", views.ProfileSearchView, "profile-search"),
]

urlpatterns = [
    *route_patterns(ROUTES),
    re_path(r"^$", root.ApiRootView.as_view(), name="api-root"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="api-schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
