"""Small-cell suppression: examples, then an attacker who brute-forces every table the published view allows."""

from __future__ import annotations

from collections.abc import Iterator
from math import comb
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.reports.model import Cell
from app.reports.suppression import suppress


def table(*counts: Any) -> list[tuple[str, int]]:
    """Counts as given, ill-typed ones included: the refusals below are for those."""
    return [(f"group {i}", count) for i, count in enumerate(counts)]


def published(*counts: int, k: int) -> list[int | None]:
    return [cell.count for cell in suppress(table(*counts), min_group_size=k)]


# Examples


def test_nothing_small_suppresses_nothing() -> None:
    assert published(5, 12, 7, k=5) == [5, 12, 7]


def test_one_small_cell_takes_the_smallest_other_non_zero_cell_with_it() -> None:
    assert published(30, 3, 8, 0, 6, k=5) == [30, None, 8, 0, None]


def test_ties_go_to_the_first_cell() -> None:
    assert published(9, 2, 9, k=5) == [None, None, 9]


def test_small_cells_summing_below_k_take_a_third() -> None:
    assert published(1, 2, 20, 7, k=5) == [None, None, 20, None]


def test_two_small_cells_summing_to_k_are_enough() -> None:
    assert published(2, 3, 20, k=5) == [None, None, 20]


def test_zeros_stay_published() -> None:
    assert published(0, 4, 0, 6, 10, k=5) == [0, None, 0, None, 10]


def test_small_cells_of_one_each_take_a_larger_one() -> None:
    # Five cells of 1 reach k = 5 together, but zeros are published, so each suppressed cell is at least 1:
    # a residual of 5 over five cells would say every one of them is exactly 1.
    assert published(1, 1, 1, 1, 1, 40, 50, k=5) == [None, None, None, None, None, None, 50]


def test_a_total_below_k_suppresses_every_cell() -> None:
    assert published(1, 0, 2, k=5) == [None, None, None]
    # Publishing the zeros would say the 3 signers are all in the first group.
    assert published(3, 0, 0, k=5) == [None, None, None]


def test_when_no_complement_is_enough_every_cell_is_suppressed() -> None:
    assert published(1, 1, 1, 1, 1, 0, k=5) == [None] * 6


def test_no_signatures_suppresses_nothing() -> None:
    assert published(0, 0, 0, k=5) == [0, 0, 0]
    assert suppress([], min_group_size=5) == ()


def test_min_group_size_one_suppresses_nothing() -> None:
    assert published(1, 0, 2, 1, k=1) == [1, 0, 2, 1]


def test_order_and_labels_are_kept() -> None:
    cells = [("Warehouse", 40), ("Finance", 2), ("Legal", 6), ("Not given", 9)]
    assert suppress(cells, min_group_size=5) == (
        Cell("Warehouse", 40),
        Cell("Finance", None),
        Cell("Legal", None),
        Cell("Not given", 9),
    )


@pytest.mark.parametrize(
    "cells, k",
    [
        (table(3, -1), 5),
        (table(3, 2.0), 5),
        (table(3, True), 5),
        (table(3, None), 5),
        (table(3, 4), 0),
        (table(3, 4), -2),
        (table(3, 4), 2.5),
        (table(3, 4), True),
    ],
)
def test_bad_input_is_refused(cells: list[tuple[str, int]], k: int) -> None:
    with pytest.raises(ValueError):
        suppress(cells, min_group_size=k)


# The attacker


def compositions(total: int, parts: int, low: int) -> Iterator[tuple[int, ...]]:
    """Every way to write `total` as `parts` integers of at least `low`, in order."""
    if parts == 1:
        if total >= low:
            yield (total,)
        return
    for first in range(low, total - low * (parts - 1) + 1):
        for rest in compositions(total - first, parts - 1, low):
            yield (first, *rest)


@st.composite
def tables(draw: st.DrawFn) -> list[int]:
    # Counts up to 60, but each table has its own largest count, so sparse tables of small groups (the ones
    # that need care) come up as often as busy ones.
    largest = draw(st.integers(0, 60))
    return draw(st.lists(st.integers(0, largest), min_size=1, max_size=12))


@settings(max_examples=300, deadline=None, database=None)  # no database: nothing written into the checkout
@given(counts=tables(), k=st.integers(2, 10))
def test_an_attacker_learns_no_suppressed_cell(counts: list[int], k: int) -> None:
    cells = suppress(table(*counts), min_group_size=k)
    view = [cell.count for cell in cells]  # what the attacker sees, with the total
    total = sum(counts)
    hidden = [i for i, count in enumerate(view) if count is None]

    # (iv) published cells are the true counts, in order, under the same labels
    assert [cell.label for cell in cells] == [label for label, _ in table(*counts)]
    assert all(count == counts[i] for i, count in enumerate(view) if count is not None)
    residual = total - sum(count for count in view if count is not None)  # the attacker can derive this
    assert residual == sum(counts[i] for i in hidden)

    # (i) no small group is shown
    assert all(view[i] is None for i, count in enumerate(counts) if 0 < count < k)

    # (iii) the suppressed cells together are no small group, unless all that is left is the total
    all_non_zero_hidden = all(view[i] is None for i, count in enumerate(counts) if count > 0)
    assert (residual == 0 and not hidden) or residual >= k or all_non_zero_hidden
    if hidden and residual < k:
        assert hidden == list(range(len(counts))), "below k, publishing the zeros tells where signers are not"

    if len(counts) == 1 or not hidden:
        return  # a table of one cell is its total, which is public
    # (ii) no suppressed cell is determined. Zeros are published unless every cell is suppressed, so when
    # any cell is shown the attacker knows each suppressed cell holds at least 1.
    low = 1 if len(hidden) < len(counts) else 0
    assert len(hidden) >= 2
    # By reasoning: each suppressed cell can be anything from `low` to what the others leave at their least.
    feasible = range(low, residual - low * (len(hidden) - 1) + 1)
    assert len(feasible) >= 2
    # By brute force, when there are few enough tables to try: every assignment the view allows.
    if comb(residual - low * len(hidden) + len(hidden) - 1, len(hidden) - 1) <= 20_000:
        seen: list[set[int]] = [set() for _ in hidden]
        for values in compositions(residual, len(hidden), low):
            for values_seen, value in zip(seen, values, strict=True):
                values_seen.add(value)
        assert all(values_seen == set(feasible) for values_seen in seen)
        assert all(counts[i] in values_seen for i, values_seen in zip(hidden, seen, strict=True))
