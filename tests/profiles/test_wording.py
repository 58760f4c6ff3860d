"""How counts and strategies read for people."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from profiles.merge import MergeMode, Strategy, merge_mode_label
from profiles.wording import count_noun


@given(st.integers(min_value=0, max_value=10**9))
def test_a_count_is_singular_only_for_one_and_grouped_by_thousands(count):
    text = count_noun(count, "line")
    assert text.endswith(" line" if count == 1 else " lines")
    assert int(text.split()[0].replace(",", "")) == count


def test_each_strategy_reads_one_way_with_its_code_after():
    assert merge_mode_label(MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=True)) == (
        "Update: the line's keys overwrite, the others stay, nested objects merged deeply "
        "(PARTIAL_UPDATE)"
    )
    assert merge_mode_label(MergeMode(Strategy.PARTIAL_UPDATE, merge_objects=False)).endswith(
        "nested objects replaced (PARTIAL_UPDATE)"
    )
    assert merge_mode_label(MergeMode(Strategy.FORCE_REPLACE)).endswith("(FORCE_REPLACE)")
    assert merge_mode_label(MergeMode(Strategy.PARTIAL_DELETE)).startswith("Remove:")
