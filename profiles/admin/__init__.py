"""The back-office: datamarts, compartments, user points, profiles, API tokens, history.

One module per admin; every admin derives from `DatamartScopedAdmin` (scoping.py), so staff
see and change only their datamarts' objects, and writes go through the services
(service_writes.py), so the rules and `$last_modified_ts` behave as in the API and the importer.

`UserProfileAdmin` (user_profiles.py) is registered by the import/export screens, which extend
it: see imports/admin/profile_import_export.py.
"""

from django.contrib import admin

from profiles.admin import (  # noqa: F401  (each module registers its admin)
    api_tokens,
    compartments,
    datamarts,
    history,
    user_points,
    user_profiles,
)

admin.site.site_header = "Profiles back-office"
admin.site.site_title = "Profiles"
admin.site.index_title = "Datamarts, user points and profiles"
# "View site" opens the API root (the user links also name the API docs: admin/base_site.html).
admin.site.site_url = "/api/v1/"
