"""Import and export are two permissions of their own (profiles.import_profiles and
profiles.export_profiles), granted apart from add/change."""

from __future__ import annotations

from profiles.permissions import EXPORT_PROFILES, IMPORT_PROFILES


def can_import(request) -> bool:
    return request.user.has_perm(IMPORT_PROFILES)


def can_export(request) -> bool:
    return request.user.has_perm(EXPORT_PROFILES)
