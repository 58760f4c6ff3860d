"""Keyset (cursor) paging: `?limit=` (default 100, capped at 1000) and `?cursor=` from `next`.

A cursor is the sort key of the last item served, so pages stay stable while rows are added
or removed: no item is skipped or served twice because of an insert before it.
"""

from __future__ import annotations

import base64
import binascii
import json

from django.db.models import Q, QuerySet

from profiles.api.paths import bad_request

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_KEY = 2**63 - 1


# The query parameters of a paged list.
PAGE_QUERY_PARAMETERS = frozenset({"limit", "cursor"})


def page_limit(query_params) -> int:
    text = query_params.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise bad_request("INVALID_LIMIT", "limit must be a positive integer", field="limit")
    return min(int(text), MAX_LIMIT)


def encode_cursor(values: list[int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(query_params, *, size: int) -> list[int] | None:
    """The sort key a cursor holds; anything but a cursor `encode_cursor` made is INVALID_CURSOR.

    The text is bounded before it is decoded: no cursor of `size` keys is longer than the one
    of the most negative keys, so a client's text never reaches the JSON parser's recursion
    (`[[[[…`) or its big-number arithmetic.
    """
    text = query_params.get("cursor")
    if text is None or text == "":
        return None
    values = None
    if len(text) <= len(encode_cursor([-_MAX_KEY] * size)):
        try:
            values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            values = None
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_KEY
            for value in values
        )
    ):
        raise bad_request(
            "INVALID_CURSOR", "cursor must be the `next` value of a previous page", field="cursor"
        )
    return values


def keyset_page(
    queryset: QuerySet, *, keys: tuple[str, ...], descending: bool = False, query_params
) -> tuple[list, str | None]:
    """One page of `queryset` ordered by `keys` (integer columns), and the next page's cursor."""
    limit = page_limit(query_params)
    after = decode_cursor(query_params, size=len(keys))
    if after is not None:
        operator = "lt" if descending else "gt"
        condition = Q()
        for index, key in enumerate(keys):
            equal = {keys[i]: after[i] for i in range(index)}
            condition |= Q(**equal, **{f"{key}__{operator}": after[index]})
        queryset = queryset.filter(condition)
    ordering = [f"-{key}" if descending else key for key in keys]
    rows = list(queryset.order_by(*ordering)[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([getattr(rows[-1], key) for key in keys])
