"""The back-office's own permissions, beside Django's add/change/delete/view.

Import and export are granted separately: importing rewrites profiles in bulk, exporting
downloads a datamart's personal data. Both are defined on UserProfile's Meta.
"""

IMPORT_PROFILES = "profiles.import_profiles"
EXPORT_PROFILES = "profiles.export_profiles"
