"""The PostgreSQL merge functions (migration profiles/0011) equal `profiles.merge.apply_merge`
for every strategy, on any properties: nested objects, arrays with duplicates, nulls, unicode,
numbers of every kind (1 and 1.0, true and 1, big integers, floats), and PARTIAL_DELETE's
patterns drawn from the stored values, so that they match."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiles.merge import apply_merge, json_equal
from tests.profiles.test_merge import ALL_MODES, DELETE

pytestmark = pytest.mark.postgres

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=3
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0.0, 1.0, -0.0, 1.5, 4.16204692637487e16, 41620469263748700, True, 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "a", "b", "é", "日本"])
    | _text
)
_keys = st.sampled_from(["", "a", "b", "c", "é"]) | _text
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=14,
)
_objects = st.dictionaries(_keys, _values, max_size=5)


def _part_of(draw, value):
    """A value like `value` or a part of it (fewer keys, fewer elements, nested): the patterns
    PARTIAL_DELETE matches, or almost matches, and the updates deep merges meet."""
    if isinstance(value, dict) and draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(list(value)), unique=True)) if value else []
        return {key: _part_of(draw, value[key]) for key in keys}
    if isinstance(value, list) and value and draw(st.booleans()):
        return [_part_of(draw, item) for item in draw(st.lists(st.sampled_from(value), max_size=3))]
    return value


@st.composite
def _pairs(draw):
    """(E, N): N often reuses E's keys and parts of its values, so merges and deletes meet
    something."""
    existing = draw(st.none() | _objects)
    pool = list((existing or {}).items())
    reused = st.sampled_from(pool) if pool else st.nothing()
    incoming = dict(draw(st.lists(reused | st.tuples(_keys, _values), max_size=5)))
    return existing, {key: _part_of(draw, value) for key, value in incoming.items()}


def sql_merge(existing, incoming, mode):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT profiles_merge(%s::jsonb, %s::jsonb, %s, %s)::text",
            [
                None if existing is None else json.dumps(existing),
                json.dumps(incoming),
                mode.strategy.value,
                mode.merge_objects,
            ],
        )
        (text,) = cursor.fetchone()
    return None if text is None else json.loads(text)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pair=_pairs(), mode=st.sampled_from(ALL_MODES))
# Deletes whose patterns an array containment (jsonb's @>) would match but equality does not.
@example(pair=({"t": [[1, 2], [1]]}, {"t": [[1]]}), mode=DELETE)
@example(pair=({"t": [[1], 2]}, {"t": [1]}), mode=DELETE)
@example(pair=({"t": [{"a": [1, 2]}, {"a": [1]}]}, {"t": [{"a": [1]}]}), mode=DELETE)
@example(pair=({"t": [1, "x", [2], None, {"a": 1}]}, {"t": [{}]}), mode=DELETE)  # {}: objects only
def test_the_sql_merge_equals_the_python_merge(db, pair, mode):
    existing, incoming = pair
    expected = apply_merge(existing, incoming, mode)
    found = sql_merge(existing, incoming, mode)
    if expected is None:
        assert found is None
    else:
        assert found is not None and json_equal(found, expected), (found, expected)


def test_the_sql_merge_refuses_an_unknown_strategy(db):
    from django.db import DataError, InternalError, ProgrammingError

    with (
        pytest.raises((DataError, InternalError, ProgrammingError)),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT profiles_merge('{}'::jsonb, '{}'::jsonb, 'NOPE', true)")
