"""A change's values before → after, key by key, the differing lines marked."""

from __future__ import annotations

from profiles.admin.change_diff import DiffLine, KeyChange, key_changes


def test_only_the_lines_that_differ_are_marked_and_absent_keys_have_no_lines():
    changes = key_changes(
        keys=["gone", "new", "nl"],
        before={"gone": 1, "nl": {"on": True, "period": "MONTHLY"}},
        after={"new": [1], "nl": {"on": True, "period": "WEEKLY"}},
    )
    assert changes[0] == KeyChange("gone", [DiffLine("1", True)], None)
    assert changes[1] == KeyChange(
        "new", None, [DiffLine("[", True), DiffLine("  1", True), DiffLine("]", True)]
    )
    assert changes[2].before == [
        DiffLine("{", False),
        DiffLine('  "on": true,', False),
        DiffLine('  "period": "MONTHLY"', True),
        DiffLine("}", False),
    ]
    assert [line.changed for line in changes[2].after] == [False, False, True, False]


def test_a_comma_gained_when_a_key_is_added_does_not_mark_the_line():
    (change,) = key_changes(keys=["nl"], before={"nl": {"a": 1}}, after={"nl": {"a": 1, "b": 2}})
    assert [line.text for line in change.after if line.changed] == ['  "b": 2']
    assert not any(line.changed for line in change.before)
