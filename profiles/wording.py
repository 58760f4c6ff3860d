"""How the product words counts for people: "1 line", "2 lines", "12,000 lines"."""

from __future__ import annotations


def count_noun(count: int, singular: str, plural: str | None = None) -> str:
    """`count` and its noun, singular for exactly one, with thousands separators."""
    noun = singular if count == 1 else (plural or f"{singular}s")
    return f"{count:,} {noun}"
