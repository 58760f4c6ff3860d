"""The write engine over a chunk against the same lines applied one by one (batches of one).

For any sequence of commands, cut into chunks of any size, `commands_apply` must
leave the same user points, identifiers, profiles and history, and count the same outcomes and
errors, as applying the commands one by one through the domain services.
"""

from __future__ import annotations

from collections import Counter

from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from profiles.commands import LineError, Operation, ProfileCommand
from profiles.engine import commands_apply
from profiles.errors import ProfileError
from profiles.history import ChangeSource
from profiles.identifiers import AccountIdentifier, EmailIdentifier, UserAgentIdentifier
from profiles.merge import DEFAULT_MERGE_MODE, MergeMode, Strategy
from profiles.models import ProfileChange
from profiles.services import profile_command_apply
from tests.imports.helpers import point_labels, snapshot

SOURCE = ChangeSource(kind=ProfileChange.Source.IMPORT)

identifiers = st.one_of(
    st.builds(
        AccountIdentifier,
        user_account_id=st.sampled_from(["a", "b"]),
        compartment_id=st.sampled_from([None, 1606, 1606, 99]),
    ),
    st.builds(EmailIdentifier, email_hash=st.sampled_from(["e1", "e2"])),
    st.builds(UserAgentIdentifier, user_agent_id=st.just("vec:1")),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([1.0, 2.5]), st.sampled_from("xy")
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["id", "s", "k"]), children, max_size=3),
    ),
    max_leaves=6,
)
properties = st.dictionaries(st.sampled_from(["x", "y", "nl", "tags", "$bad"]), values, max_size=3)


@st.composite
def user_profiles(draw):
    profile = draw(properties)
    compartment = draw(st.sampled_from([None, None, 1606, "1606", 1, 98]))
    account = draw(st.sampled_from([None, None, "a", "b"]))
    if compartment is not None:
        profile["$compartment_id"] = compartment
    if account is not None:
        profile["$user_account_id"] = account
    return profile


@st.composite
def commands(draw):
    operation = draw(st.sampled_from([Operation.UPSERT, Operation.UPSERT, Operation.DELETE]))
    user_profile = draw(user_profiles())
    if operation is Operation.DELETE and draw(st.booleans()):
        user_profile = None
    return dict(
        operation=operation,
        identifier=draw(identifiers),
        user_profile=user_profile,
        update_strategy=draw(
            st.sampled_from([None, None, "FORCE_REPLACE", "PARTIAL_UPDATE", "PARTIAL_DELETE", "X"])
        ),
        force_replace=draw(st.sampled_from([None, None, True, False, "maybe"])),
        merge_objects=draw(st.sampled_from([None, None, True, False])),
    )


def _upsert(profile: dict) -> dict:
    return dict(
        operation=Operation.UPSERT,
        identifier=AccountIdentifier(user_account_id="a", compartment_id=1606),
        user_profile={"$compartment_id": 1606, "$user_account_id": "a", **profile},
        update_strategy=None,
        force_replace=None,
        merge_objects=None,
    )


def _history(datamart_id: int) -> list[tuple]:
    labels = point_labels(datamart_id)
    return [
        (labels.get(point), compartment, account, action, keys, source)
        for point, compartment, account, action, keys, source in ProfileChange.objects.filter(
            datamart_id=datamart_id
        )
        .order_by("id")
        .values_list(
            "user_point_id", "compartment_id", "user_account_id", "action", "changed_keys", "source"
        )
    ]


def _reference(datamart, lines: list[ProfileCommand], default: MergeMode):
    counts: Counter = Counter()
    errors = []
    for command in lines:
        try:
            outcome = profile_command_apply(
                datamart=datamart, command=command, mode=default, source=SOURCE
            )
            counts[str(outcome)] += 1
        except ProfileError as problem:
            errors.append((command.line, problem.code))
    return counts, errors


def _chunked(datamart, lines: list[ProfileCommand], default: MergeMode, size: int):
    counts: Counter = Counter()
    errors = []
    for start in range(0, len(lines), size):
        result = commands_apply(
            datamart=datamart,
            records=lines[start : start + size],
            default_mode=default,
            source=SOURCE,
        )
        counts.update({name: count for name, count in result.counts.items() if count})
        errors.extend((error.line, error.code) for error in result.errors)
    return counts, errors


def _outcome(datamart, apply) -> tuple:
    """Apply, read the result back, and roll everything back."""
    with transaction.atomic():
        counts, errors = apply()
        outcome = (dict(counts), errors, snapshot(datamart.pk), _history(datamart.pk))
        transaction.set_rollback(True)
    return outcome


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.lists(commands(), min_size=1, max_size=14),
    size=st.integers(min_value=1, max_value=6),
    default=st.sampled_from(
        [
            DEFAULT_MERGE_MODE,
            MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=False),
            MergeMode(Strategy.FORCE_REPLACE),
        ]
    ),
)
@example(  # true is not 1, and 1.0 is 1, in JSON
    fields=[
        _upsert({"x": 1}),
        _upsert({"x": True}),
        _upsert({"x": 1.0}),
        _upsert({"x": 1}),
        _upsert({"x": 1.0}),
    ],
    size=2,
    default=DEFAULT_MERGE_MODE,
)
@example(  # a DELETE, then the UPSERT that creates its point, in one chunk
    fields=[
        {**_upsert({}), "operation": Operation.DELETE},
        _upsert({"x": 1}),
        {**_upsert({}), "operation": Operation.DELETE, "user_profile": None},
        _upsert({"x": 2}),
    ],
    size=4,
    default=DEFAULT_MERGE_MODE,
)
def test_chunks_leave_the_database_the_reference_leaves(
    datamart, crm_compartment, fields, size, default
):
    lines = [ProfileCommand(line=index + 1, **command) for index, command in enumerate(fields)]
    expected = _outcome(datamart, lambda: _reference(datamart, lines, default))
    actual = _outcome(datamart, lambda: _chunked(datamart, lines, default, size))
    assert actual[0] == expected[0], "outcome counts"
    assert actual[1] == expected[1], "line errors"
    assert actual[2] == expected[2], "points and profiles"
    assert actual[3] == expected[3], "history"


def test_reader_line_errors_pass_through_a_chunk_untouched(datamart):
    error = LineError(line=3, code="INVALID_JSON", message="line 3: bad", raw="{")
    result = commands_apply(
        datamart=datamart, records=[error], default_mode=DEFAULT_MERGE_MODE, source=SOURCE
    )
    assert result.errors == [error] and result.lines == 1
