"""A paginator that never counts a whole big table: the admin lists stay fast at 10M rows."""

from __future__ import annotations

import json
from functools import cached_property

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connections

# Up to this many rows a list counts exactly; beyond it the count is an estimate.
COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to COUNT_CAP rows, estimates beyond.

    - An unfiltered queryset on PostgreSQL: the table's `pg_class.reltuples` (kept by
      ANALYZE and autovacuum), no scan at all.
    - Otherwise `SELECT COUNT(*) FROM (SELECT … LIMIT COUNT_CAP + 1)`: bounded work. When the
      cap is reached, PostgreSQL's planner estimate for the query (EXPLAIN) gives the number,
      unless it is below the cap (statistics older than the rows, before autovacuum analyses
      the table); then, as on SQLite, the count is only known to be more than COUNT_CAP
      (`count_label` says which).
    The pages are those of the count: a number past the last page shows the last page, never
    a page the list's page links do not lead to.
    """

    is_estimate = False  # the count is PostgreSQL's estimate, or only a lower bound
    is_lower_bound = False  # the count is COUNT_CAP + 1: more than COUNT_CAP rows

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not hasattr(queryset, "query"):
            return super().count
        connection = connections[queryset.db]
        if connection.vendor == "postgresql" and not queryset.query.where:
            estimate = _table_estimate(connection, queryset.model._meta.db_table)
            if estimate is not None and estimate > COUNT_CAP:
                self.is_estimate = True
                return estimate
        capped = queryset.order_by()[: COUNT_CAP + 1].count()
        if capped <= COUNT_CAP:
            return capped
        self.is_estimate = True
        if connection.vendor == "postgresql":
            planned = _plan_estimate(connection, queryset)
            if planned > COUNT_CAP:
                return planned
        # No estimate (SQLite), or the planner's is below what was counted: the table was
        # filled since PostgreSQL last analysed it. Only the lower bound is known.
        self.is_lower_bound = True
        return capped

    @property
    def count_label(self) -> str:
        """The count as staff should read it: exact, about (estimated), or more than the cap."""
        count = self.count
        if self.is_lower_bound:
            return f"more than {COUNT_CAP:,}"
        if self.is_estimate:
            return f"about {count:,}"
        return f"{count:,}"

    def validate_number(self, number):
        try:
            number = int(number)
        except (TypeError, ValueError) as error:
            raise PageNotAnInteger("That page number is not an integer") from error
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return min(number, self.num_pages)


def _table_estimate(connection, table: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    # -1: never analysed yet.
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


def _plan_estimate(connection, queryset) -> int:
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
