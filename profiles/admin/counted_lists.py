"""Lists of big tables: counted up to a cap (profiles.paginators.EstimatedCountPaginator), the
count shown as staff should read it ("more than 10,000", "about 45,000"), and a page number
past the last page showing the last page rather than one no page link leads to."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList

from profiles.paginators import EstimatedCountPaginator


class EstimatedCountChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        # The page the paginator showed: `p` past the last page shows the last one.
        self.page_num = min(self.page_num, self.paginator.num_pages)
        if self.paginator.is_estimate:
            self.can_show_all = False  # "Show all" of an uncounted list would load every row


class EstimatedCountListMixin:
    """For an admin whose list may hold millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return EstimatedCountChangeList
