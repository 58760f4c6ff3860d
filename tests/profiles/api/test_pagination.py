"""Cursors: whatever a client sends as `cursor`, a list answers its page or 400 INVALID_CURSOR
naming the parameter, never a 500."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiles.api.exceptions import ApiError
from profiles.api.pagination import decode_cursor, encode_cursor
from tests.profiles.api.client import BASE, data, error

MAX_KEY = 2**63 - 1


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Each one of them answered a 500 or could: recursion, huge numbers, odd types, NUL, junk.
HOSTILE_CURSORS = [
    b64(b"[" * 2000 + b"]" * 2000),
    b64(b"[" * 100_000),
    b64(b"[[1]]"),
    b64(b'{"id": 1}'),
    b64(b'"1"'),
    b64(b"1"),
    b64(b"[]"),
    b64(b"[1, 2, 3]"),
    b64(b"[1.5]"),
    b64(b"[true]"),
    b64(b"[null]"),
    b64(b'["1"]'),
    b64(b"[NaN]"),
    b64(b"[Infinity]"),
    b64(b"[1e999]"),
    b64(b"[9223372036854775808]"),
    b64(b"[" + b"9" * 5000 + b"]"),
    b64(b"[1]\x00"),
    b64(b'["\\u0000"]'),
    b64(b'["\\ud800"]'),
    b64(b"\xff\xfe[1]"),
    b64(b"not json"),
    "not base64!",
    "é",
    "=",
    "A" * 100_000,
]


def _refused(text: str, size: int) -> ApiError:
    with pytest.raises(ApiError) as refused:
        decode_cursor({"cursor": text}, size=size)
    return refused.value


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
def test_a_hostile_cursor_is_refused_as_invalid_cursor(cursor):
    refused = _refused(cursor, 1)
    assert (refused.status_code, refused.get_codes(), refused.field) == (
        400,
        "INVALID_CURSOR",
        "cursor",
    )


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=200) | st.binary(min_size=1000, max_size=5000),
    size=st.sampled_from([1, 2]),
)
@example(raw=b"[" * 2000 + b"]" * 2000, size=1)
def test_any_bytes_as_a_cursor_give_a_page_key_or_invalid_cursor(raw, size):
    for text in (b64(raw), raw.decode("latin-1")):
        try:
            values = decode_cursor({"cursor": text}, size=size)
        except ApiError as refused:
            assert refused.get_codes() == "INVALID_CURSOR"
            continue
        if text == "":  # no cursor: the first page
            assert values is None
            continue
        assert len(values) == size
        assert all(type(value) is int and abs(value) <= MAX_KEY for value in values)


@given(values=st.lists(st.integers(-MAX_KEY, MAX_KEY), min_size=1, max_size=2))
def test_every_cursor_the_api_gives_is_read_back(values):
    assert decode_cursor({"cursor": encode_cursor(values)}, size=len(values)) == values


@pytest.mark.parametrize("path", [f"{BASE}/user_profiles", f"{BASE}/compartments"])
@pytest.mark.parametrize("cursor", HOSTILE_CURSORS[:3] + ["not base64!"])
def test_the_profile_lists_answer_400_to_a_hostile_cursor(api, path, cursor):
    body = error(api.get(path, {"cursor": cursor}), 400)
    assert (body["error_code"], body["field"]) == ("INVALID_CURSOR", "cursor")
    assert "cursor" in body["error"]


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=300))
def test_any_bytes_as_a_search_cursor_never_answer_500(api, raw):
    response = api.get(f"{BASE}/user_profiles", {"cursor": b64(raw)})
    if response.status_code != 200:
        assert error(response, 400)["error_code"] == "INVALID_CURSOR"
    else:
        assert data(response) == []
