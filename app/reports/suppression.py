"""Small-cell suppression: no published breakdown may expose a group smaller than the minimum group size.

A breakdown (signatures by department, or by location) is a list of cells that add up to the petition's
signature count, and that count is always public. We assume an attacker who knows the published cells, the
total, the minimum group size k and the rules below (this is free software), but not which suppressed cells
were the small ones; what they must not learn is the value of any suppressed cell.

1. Primary suppression: every cell with 1 <= count < k is suppressed. A zero cell is published as 0: it
   identifies nobody.
2. Complementary suppression: because the total is published, one suppressed cell is the total minus the
   published ones, and several suppressed cells still give away their sum R. So more cells are suppressed,
   the smallest non-zero ones first (ties by position), until all three hold:
   a. at least two cells are suppressed, so none can be recovered by subtraction;
   b. R >= k, so the suppressed cells together do not form a small group either;
   c. R > the number of suppressed cells. Zero cells are published, so the attacker knows every suppressed
      cell holds at least 1; were they all 1 (five departments of one signer each, say), R would say so.
   With these, every suppressed cell could hold anything from 1 to R minus one per other suppressed cell:
   at least two values. Zero cells are never used as complements: a 0 adds nothing to R, and the attacker
   knows suppressed cells are not 0.
3. If even suppressing every non-zero cell does not achieve that (the total is below k, or every signer is
   alone in their cell), every cell is suppressed, zeros included: the total is still published, and it is
   all that is learnt. Publishing the zeros here would tell where the few signers are not (with one
   non-zero cell, exactly where they all are).

The choice of complements depends on the true counts, so an attacker who replays this rule over every
table consistent with what was published can sometimes narrow a suppressed cell more than the bounds
above say; the guarantee here is the one above, against the published cells, the total and k.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from app.reports.model import Cell


def suppress(cells: Sequence[tuple[str, int]], *, min_group_size: int, also: Collection[int] = ()) -> tuple[Cell, ...]:
    """The cells as they may be published, in the order given: a suppressed cell's count is None.

    `cells` are (label, count) pairs that add up to the published total; `min_group_size` (k) is the
    smallest group that may be shown. k = 1 suppresses nothing. `also`: positions already suppressed for
    another reason (a table's other dimension, `suppress_table`), kept suppressed and protected like the
    primary ones; a zero among them only adds doubt (the attacker no longer knows it is not 0).
    """
    if type(min_group_size) is not int or min_group_size < 1:
        raise ValueError(f"min_group_size must be an integer of at least 1, not {min_group_size!r}")
    for label, count in cells:
        # bool is an int subclass; True as a count is a bug upstream, not a signature
        if type(count) is not int or count < 0:
            raise ValueError(f"the count for {label!r} must be a non-negative integer, not {count!r}")

    k = min_group_size
    counts = [count for _, count in cells]
    hidden = sorted({i for i, count in enumerate(counts) if 0 < count < k} | set(also))
    if hidden:
        spare = sorted(
            (i for i, count in enumerate(counts) if count >= k and i not in hidden), key=lambda i: (counts[i], i)
        )
        for i in spare:
            if _protected([counts[j] for j in hidden], k):
                break
            hidden.append(i)
        if not _protected([counts[j] for j in hidden], k):
            hidden = list(range(len(counts)))
    suppressed = set(hidden)
    return tuple(Cell(label, None if i in suppressed else count) for i, (label, count) in enumerate(cells))


def _protected(suppressed: list[int], k: int) -> bool:
    """Whether these suppressed (non-zero) counts hide each other: see the module's docstring, rules a to c."""
    residual = sum(suppressed)
    # (a) also follows from (b): a lone suppressed cell is a primary one, below k. It is checked for what it says.
    return len(suppressed) >= 2 and residual >= k and residual > len(suppressed)


def suppress_table(
    rows: Sequence[tuple[str, Sequence[int]]], *, min_group_size: int
) -> tuple[tuple[str, tuple[Cell, ...]], ...]:
    """A table's cells as they may be published: rows (a poll's groups) by columns (its options), where each
    column adds up to a published total (the poll's result) and the rows' totals are not published.

    Each column is one breakdown, suppressed by `suppress` above. One more rule, for the rows: a row with a
    suppressed cell whose published cells are all 0 is suppressed whole, zeros included. Its zeros would say
    where its few answers are not; with one suppressed cell, exactly which option all of them chose. A column
    that gains a suppressed cell that way is suppressed again (a lone suppressed 0 is its total minus the rest),
    and so on until nothing moves: each round only adds suppressed cells, so it ends.

    What holds then: in every column, the suppressed cells meet rules a to c above, so none is worked out from
    its column's total, and no row has a suppressed cell beside zeros only. Rows' totals (how many of a group
    answered) are never published; were they, a row's one suppressed cell would be its total minus the rest.
    """
    counts = [list(row) for _label, row in rows]
    width = len(counts[0]) if counts else 0
    hidden: set[tuple[int, int]] = set()
    moved = True
    while moved:
        moved = False
        for column in range(width):
            cells = [(label, counts[r][column]) for r, (label, _row) in enumerate(rows)]
            already = [r for r in range(len(rows)) if (r, column) in hidden]
            for r, cell in enumerate(suppress(cells, min_group_size=min_group_size, also=already)):
                if cell.count is None and (r, column) not in hidden:
                    hidden.add((r, column))
                    moved = True
        for r, row in enumerate(counts):
            shown = [row[column] for column in range(width) if (r, column) not in hidden]
            if len(shown) < width and shown and not any(shown):
                hidden.update((r, column) for column in range(width))
                moved = True
    return tuple(
        (label, tuple(Cell(label, None if (r, column) in hidden else counts[r][column]) for column in range(width)))
        for r, (label, _row) in enumerate(rows)
    )
