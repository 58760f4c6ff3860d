"""Following strings and brackets on bytes: in pieces as whole, and the counting shortcut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imports.readers.json_scan import BoundedBytes, BracketWalker, is_one_object

_TOKENS = st.sampled_from(["{", "}", "[", "]", '"', "\\", "a", " ", ",", '"x"', '\\"', '"[{"'])
_TEXTS = st.lists(_TOKENS, max_size=30).map(lambda tokens: "".join(tokens).encode())


def _walk_whole(text: bytes) -> BracketWalker:
    walker = BracketWalker()
    walker.walk(text)
    return walker


@given(text=_TEXTS, cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=5))
def test_walking_in_pieces_ends_where_walking_whole_does(text, cuts):
    walker = BracketWalker()
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    for start, end in zip(bounds, bounds[1:], strict=False):
        walker.walk(text[start:end])
    whole = _walk_whole(text)
    assert (walker.depth, walker.in_string, walker.escape_pending) == (
        whole.depth,
        whole.in_string,
        whole.escape_pending,
    )


@given(text=_TEXTS)
def test_walking_down_stops_right_after_the_closing_bracket(text):
    opened = b"{" + text
    walker = BracketWalker(depth=1)
    stop = walker.walk(opened, 1, down_to=0)
    if walker.depth == 0:
        assert opened[stop - 1 : stop] in (b"}", b"]")
        assert _walk_whole(opened[: stop - 1]).depth == 1  # still open just before it
    else:
        assert stop == len(opened)


@given(text=_TEXTS, padding=st.sampled_from([b"", b" ", b"\t \r"]))
def test_one_object_is_told_only_when_walking_closes_it_at_its_end(text, padding):
    candidate = padding + b"{" + text + b"}" + padding
    if is_one_object(candidate):
        walker = BracketWalker(depth=1)
        start = candidate.index(b"{") + 1
        assert walker.walk(candidate, start, down_to=0) == len(candidate.rstrip())


def test_one_object_shortcut_on_the_usual_lines():
    assert is_one_object(b'  {"operation": "UPSERT", "user_profile": {"a": [1, {"b": "}"}]}} ')
    assert is_one_object(b'{"s": "a \\" [ { \\\\"}')
    assert not is_one_object(b'{"a": 1} {"b": 2}')
    assert not is_one_object(b'{"a": 1}}')
    assert not is_one_object(b'{"a": "unclosed}')
    assert not is_one_object(b"[1, 2]")


def test_bounded_bytes_drop_what_they_kept_past_the_limit():
    kept = BoundedBytes(5)
    kept.keep(b"abc")
    assert kept.take() == b"abc"
    kept.keep(b"def")
    assert (kept.take(), kept.parts, kept.size) == (None, [], 6)
    kept.clear()
    kept.grow(2)
    kept.keep(b"xyz")
    assert kept.take() == b"xyz"
