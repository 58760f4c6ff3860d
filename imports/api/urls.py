"""Routes of SPEC §5 under /api/v1/ for document imports and their executions. Each answers
with or without a trailing slash (no redirect)."""

from __future__ import annotations

from imports.api import views
from profiles.api.routing import DM, ID, route_patterns

IMPORT = rf"{DM}/document_imports/(?P<import_id>{ID})"
EXECUTION = rf"{IMPORT}/executions/(?P<execution_id>{ID})"

ROUTES = [
    (rf"{DM}/document_imports", views.DocumentImportListView, "document-imports"),
    (IMPORT, views.DocumentImportDetailView, "document-import"),
    (rf"{IMPORT}/executions", views.ExecutionListView, "executions"),
    (EXECUTION, views.ExecutionDetailView, "execution"),
    (rf"{EXECUTION}/errors", views.ExecutionErrorsView, "execution-errors"),
    (rf"{EXECUTION}/failed_lines", views.ExecutionFailedLinesView, "execution-failed-lines"),
    (rf"{EXECUTION}/cancel", views.ExecutionCancelView, "execution-cancel"),
    (rf"{EXECUTION}/revert", views.ExecutionRevertView, "execution-revert"),
]

urlpatterns = route_patterns(ROUTES)
