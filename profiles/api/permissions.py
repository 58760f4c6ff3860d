from __future__ import annotations

from rest_framework.permissions import BasePermission

from profiles.api.authentication import TokenUser


class IsApiClient(BasePermission):
    """An API token, or a staff session (the browser); a non-staff login is refused (403)."""

    message = "the API needs an API token or a staff login"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return isinstance(user, TokenUser) or (user.is_active and user.is_staff)
