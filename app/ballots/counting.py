"""Counting a ballot's answers: pure functions, no database and no clock, so the server, `undersigned verify` and the
tests count the same way.

- single, multiple, scale: per option, the answers choosing it and their share of everyone who answered (a
  multiple-choice ballot's shares add up to more than 100%).
- ranked: instant-runoff. Each answer counts for its highest-ranked option still standing. An option with more
  than half of the answers still counting wins. Otherwise the option with the fewest is eliminated (ties: the
  fewest first preferences, then the later position) and its answers move on to their next choice; an answer
  with no option left is exhausted. Every round is reported.
- Suppression: below `min_answers` counted answers, no figure at all (`NotEnough`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.models.ballots import BallotKind


@dataclass(frozen=True)
class OptionCount:
    position: int
    label: str
    count: int
    share: float  # of the answers counted (0..1)


@dataclass(frozen=True)
class Round:
    """One round of instant-runoff: each standing option's count (None once eliminated), the answers exhausted so
    far, and the option eliminated at the end of the round (None in the last round)."""

    number: int
    counts: tuple[int | None, ...]
    continuing: int
    exhausted: int
    eliminated: int | None


@dataclass(frozen=True)
class Results:
    kind: BallotKind
    answers: int
    options: tuple[OptionCount, ...]
    # ranked only: every round, and the winning option (None when every answer was exhausted).
    rounds: tuple[Round, ...] = field(default_factory=tuple)
    winner: int | None = None


@dataclass(frozen=True)
class NotEnough:
    """Fewer answers than the ballot's minimum: nothing is shown."""

    min_answers: int


def tally(
    *, kind: BallotKind, labels: Sequence[str], choices: Sequence[Sequence[int]], min_answers: int
) -> Results | NotEnough:
    """The result of the counted answers (each a list of option positions; ranked: in rank order), or NotEnough."""
    if len(choices) < max(1, min_answers):
        return NotEnough(min_answers=min_answers)
    answers = len(choices)
    counts = [0] * len(labels)
    for choice in choices:
        for position in choice[:1] if kind is BallotKind.ranked else set(choice):
            counts[position] += 1
    # For ranked ballots the option figures are first preferences; the rounds carry the count.
    options = tuple(
        OptionCount(position=position, label=label, count=counts[position], share=counts[position] / answers)
        for position, label in enumerate(labels)
    )
    if kind is not BallotKind.ranked:
        return Results(kind=kind, answers=answers, options=options)
    rounds, winner = instant_runoff(len(labels), choices)
    return Results(kind=kind, answers=answers, options=options, rounds=tuple(rounds), winner=winner)


def instant_runoff(option_count: int, rankings: Sequence[Sequence[int]]) -> tuple[list[Round], int | None]:
    """Every round of an instant-runoff count, and the winner (None if every answer was exhausted).

    Equal rankings are counted together, and each round moves only the eliminated option's answers on: the whole
    count reads each ranking once (recounting every answer each round took 2 s at 100,000 ranked answers)."""
    grouped = Counter(tuple(ranking) for ranking in rankings)
    first = [0] * option_count
    for ranking, weight in grouped.items():
        if ranking:
            first[ranking[0]] += weight
    standing = set(range(option_count))
    # Each option's answers now: (ranking, how far down it has been read, how many answers rank so).
    piles: dict[int, list[tuple[tuple[int, ...], int, int]]] = {position: [] for position in standing}
    counts = dict.fromkeys(standing, 0)
    exhausted = 0
    for ranking, weight in grouped.items():
        if ranking:
            piles[ranking[0]].append((ranking, 0, weight))
            counts[ranking[0]] += weight
        else:
            exhausted += weight
    total = sum(grouped.values())
    rounds: list[Round] = []
    while True:
        continuing = total - exhausted
        shown = tuple(counts.get(position) for position in range(option_count))
        leader = max(standing, key=lambda position: (counts[position], -position), default=None)
        if continuing == 0 or leader is None:
            rounds.append(Round(len(rounds) + 1, shown, continuing, exhausted, None))
            return rounds, None
        if 2 * counts[leader] > continuing or len(standing) == 1:
            rounds.append(Round(len(rounds) + 1, shown, continuing, exhausted, None))
            return rounds, leader
        # The fewest now; among those, the fewest first preferences; among those, the later position.
        loser = min(standing, key=lambda position: (counts[position], first[position], -position))
        rounds.append(Round(len(rounds) + 1, shown, continuing, exhausted, loser))
        standing.discard(loser)
        del counts[loser]
        for ranking, depth, weight in piles.pop(loser):
            following = next(
                ((at, position) for at, position in enumerate(ranking[depth + 1 :], depth + 1) if position in standing),
                None,
            )
            if following is None:
                exhausted += weight
            else:
                piles[following[1]].append((ranking, following[0], weight))
                counts[following[1]] += weight
