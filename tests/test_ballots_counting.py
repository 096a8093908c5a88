"""Counting ballots (app/ballots/counting.py): hand-worked examples, instant-runoff's ties and exhausted answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.ballots.counting import NotEnough, Results, Round, instant_runoff, tally
from app.models.ballots import BallotKind


def test_single_choice_counts_and_shares() -> None:
    found = tally(kind=BallotKind.single, labels=["Yes", "No"], choices=[[0], [0], [1], [0]], min_answers=3)
    assert isinstance(found, Results) and found.answers == 4
    assert [(o.count, o.share) for o in found.options] == [(3, 0.75), (1, 0.25)]


def test_multiple_choice_shares_are_of_answerers() -> None:
    found = tally(kind=BallotKind.multiple, labels=["A", "B", "C"], choices=[[0, 1], [1], [1, 2]], min_answers=1)
    assert isinstance(found, Results)
    assert [o.count for o in found.options] == [1, 3, 1]
    assert found.options[1].share == 1.0  # everyone chose B: shares add up to more than 1


def test_below_the_minimum_nothing_is_counted() -> None:
    assert tally(kind=BallotKind.scale, labels=list("abcde"), choices=[[4]] * 4, min_answers=5) == NotEnough(5)
    assert tally(kind=BallotKind.single, labels=["a", "b"], choices=[], min_answers=0) == NotEnough(0)


def test_a_majority_of_first_preferences_wins_in_one_round() -> None:
    rounds, winner = instant_runoff(3, [[0, 1], [0], [0, 2], [1, 0], [2]])
    assert winner == 0
    assert rounds == [Round(1, (3, 1, 1), 5, 0, None)]


def test_eliminations_transfer_to_the_next_choice() -> None:
    # First preferences A 4, B 3, C 2. C goes; its two answers rank B next: B 5 of 9 wins.
    rankings = [[0]] * 4 + [[1, 0]] * 3 + [[2, 1]] * 2
    rounds, winner = instant_runoff(3, rankings)
    assert winner == 1
    assert rounds == [Round(1, (4, 3, 2), 9, 0, 2), Round(2, (4, 5, None), 9, 0, None)]


def test_exhausted_answers_leave_the_count() -> None:
    # A 3, B 2, C 2 (C's answers rank nothing else). Tie for fewest between B and C, both 2 first preferences: the
    # later position (C) goes. C's answers are exhausted; A has 3 of the 5 still counting.
    rankings = [[0]] * 3 + [[1, 0]] * 2 + [[2]] * 2
    rounds, winner = instant_runoff(3, rankings)
    assert winner == 0
    assert rounds[0] == Round(1, (3, 2, 2), 7, 0, 2)
    assert rounds[1] == Round(2, (3, 2, None), 5, 2, None)


def test_ties_for_fewest_go_by_first_preferences() -> None:
    # Round 1: A 3, B 2, C 2, D 0 -> D goes (fewest). Round 2 again A 3, B 2, C 2: B and C tie; the tie-break
    # looks at first preferences (both 2), then eliminates the later position, C. C's answers go to B: B 4 of 7.
    rankings = [[0]] * 3 + [[1]] * 2 + [[2, 1]] * 2
    rounds, winner = instant_runoff(4, rankings)
    assert [r.eliminated for r in rounds] == [3, 2, None]
    assert winner == 1 and rounds[-1].counts == (3, 4, None, None)


def test_the_fewest_first_preferences_break_a_later_tie() -> None:
    # Round 1: A 4, B 3, C 2, D 2 (D: 2 first preferences, ranking C next). Tie C/D at 2: both 2 first preferences,
    # later position D goes; C now 4. Round 2: A 4, B 3, C 4: B goes, its answers rank C next: C 7 of 11.
    rankings = [[0]] * 4 + [[1, 2]] * 3 + [[2]] * 2 + [[3, 2]] * 2
    rounds, winner = instant_runoff(4, rankings)
    assert [r.eliminated for r in rounds] == [3, 1, None]
    assert winner == 2


def test_first_preferences_decide_between_options_tied_now() -> None:
    # Round 1: A 3, B 1, C 2, D 1. B and D tie at 1 with 1 first preference each: later position D goes, its answer
    # moves to B. Round 2: A 3, B 2, C 2: B and C tie now, B has 1 first preference against C's 2, so B goes.
    rankings = [[0]] * 3 + [[1]] + [[2]] * 2 + [[3, 1]]
    rounds, winner = instant_runoff(4, rankings)
    assert [r.eliminated for r in rounds[:2]] == [3, 1]
    assert rounds[1].counts == (3, 2, 2, None)
    # Round 3: B's two answers rank nothing still standing, so they are exhausted; A has 3 of the 5 left.
    assert winner == 0 and rounds[2] == Round(3, (3, None, 2, None), 5, 2, None)


def test_every_answer_exhausted_means_no_winner() -> None:
    rounds, winner = instant_runoff(2, [[], []])
    assert winner is None and rounds == [Round(1, (0, 0), 0, 2, None)]


def test_ranked_results_report_first_preferences_and_rounds() -> None:
    found = tally(kind=BallotKind.ranked, labels=["A", "B", "C"], choices=[[2, 1], [1], [0], [1, 0]], min_answers=1)
    assert isinstance(found, Results)
    assert [o.count for o in found.options] == [1, 2, 1]
    assert found.winner == 1 and found.rounds[-1].counts[1] == 3


def naive_runoff(option_count: int, rankings: list[list[int]]) -> tuple[list[Round], int | None]:
    """Instant-runoff as its rule reads: every round recounts every answer from the top of its ranking."""
    first = [0] * option_count
    for ranking in rankings:
        if ranking:
            first[ranking[0]] += 1
    standing = set(range(option_count))
    rounds: list[Round] = []
    while True:
        counts = dict.fromkeys(standing, 0)
        exhausted = 0
        for ranking in rankings:
            top = next((position for position in ranking if position in standing), None)
            if top is None:
                exhausted += 1
            else:
                counts[top] += 1
        continuing = len(rankings) - exhausted
        shown = tuple(counts.get(position) for position in range(option_count))
        leader = max(standing, key=lambda position: (counts[position], -position))
        if continuing == 0:
            rounds.append(Round(len(rounds) + 1, shown, continuing, exhausted, None))
            return rounds, None
        if 2 * counts[leader] > continuing or len(standing) == 1:
            rounds.append(Round(len(rounds) + 1, shown, continuing, exhausted, None))
            return rounds, leader
        loser = min(standing, key=lambda position: (counts[position], first[position], -position))
        rounds.append(Round(len(rounds) + 1, shown, continuing, exhausted, loser))
        standing.discard(loser)


@given(
    st.integers(min_value=2, max_value=6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.permutations(list(range(n))).flatmap(lambda p: st.integers(0, min(5, n)).map(lambda k: p[:k]))),
        )
    )
)
@settings(max_examples=120, deadline=None)
def test_the_count_moves_answers_as_a_full_recount_would(case: tuple[int, list[list[int]]]) -> None:
    option_count, rankings = case
    assert instant_runoff(option_count, rankings) == naive_runoff(option_count, rankings)
