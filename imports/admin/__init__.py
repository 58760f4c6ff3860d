"""The import and export screens of the back-office, one module per admin.

- profile_import_export.py: the profile list with Import and Export buttons, the one admin
  registered for UserProfile (it extends profiles' `UserProfileAdmin`).
- executions.py: each import run, followed live, with Cancel, Retry and its failed lines;
  execution_pace.py: its pace, chart and errors by code.
- document_imports.py: the import definitions executions are recorded under.
- exports.py: exports too large for one request, written by a worker.
- index_panels.py: the admin index's recent imports and exports, profiles per datamart.
"""

from django.contrib import admin

from imports.admin import (  # noqa: F401  (each module registers its admin)
    document_imports,
    executions,
    exports,
    profile_import_export,
)

# The index with the back-office's panels (admin/imports/index.html extends Django's).
admin.site.index_template = "admin/imports/index.html"
