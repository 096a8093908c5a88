"""A ballot's result is counted once per batch and kept (app/ballots/result_cache.py), and the ballots list is one
query (issue #25). The kept result must never be older than the log, never shown while the result is kept back,
and never another ballot's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import counting, result_cache
from app.ballots import service as ballots
from app.ballots.counting import Results
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.models.ballots import Ballot
from tests import factories
from tests.ballot_helpers import credential, petition_ballot, pulse_ballot
from tests.test_ballots import answer


@pytest.fixture
def tallies(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every count the service makes, by ballot id; the cache starts empty."""
    result_cache.result_cache(rt).clear()
    made: list[int] = []
    real = counting.tally

    def counting_tally(**kwargs: Any) -> counting.Results | counting.NotEnough:
        made.append(len(kwargs["choices"]))
        return real(**kwargs)

    monkeypatch.setattr(counting, "tally", counting_tally)
    return made


def counts(found: object) -> list[int]:
    assert isinstance(found, Results), found
    return [option.count for option in found.options]


def test_a_new_batch_and_a_changed_answer_show_at_once(db: Session, rt: Runtime, tallies: list[int]) -> None:
    ballot = pulse_ballot(db, rt, results_live=True, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(6)]
    for cred in creds[:5]:
        answer(db, rt, ballot.id, cred, [0])
    assert counts(ballots.results(db, rt, ballot)) == [5, 0, 0]
    assert counts(ballots.results(db, rt, ballot)) == [5, 0, 0]
    assert tallies == [5], "the second read counted again"
    answer(db, rt, ballot.id, creds[5], [1])  # a batch with a new answer
    db.refresh(ballot)
    assert counts(ballots.results(db, rt, ballot)) == [5, 1, 0]
    # A changed answer moves no counter (answers_counted stays 6), only the log: it shows at once too.
    answer(db, rt, ballot.id, creds[0], [2])
    db.refresh(ballot)
    assert ballot.answers_counted == 6
    assert counts(ballots.results(db, rt, ballot)) == [4, 1, 1]
    assert tallies == [5, 6, 6]


def test_a_kept_result_stays_hidden_until_the_close_and_below_the_minimum(
    db: Session, rt: Runtime, clock: FrozenClock, tallies: list[int]
) -> None:
    ballot = pulse_ballot(db, rt, days=1, min_answers=6)
    for choice in ([0], [1], [0], [0], [2]):
        answer(db, rt, ballot.id, credential(db, rt, ballot), choice)
    assert isinstance(ballots.results(db, rt, ballot), ballots.Hidden)
    assert tallies == [], "a kept-back result was counted (and so could be served)"
    clock.advance(timedelta(days=1))
    assert ballots.results(db, rt, ballot) == counting.NotEnough(min_answers=6)
    assert tallies == []
    # Even a result kept under this very log head is not shown while the rule keeps it back.
    head = result_cache.log_head(db, ballot.id)
    assert head is not None
    key = (ballot.key_id, ballot.kind, ballot.min_answers, ballot.answers_counted, *head)
    forged = Results(kind=ballot.kind, answers=5, options=())
    result_cache.result_cache(rt).put(ballot.id, key, forged)
    assert ballots.results(db, rt, ballot) == counting.NotEnough(min_answers=6)


def test_one_ballots_result_is_never_another_ballots(db: Session, rt: Runtime, tallies: list[int]) -> None:
    first = pulse_ballot(db, rt, results_live=True, min_answers=5)
    second = pulse_ballot(db, rt, results_live=True, min_answers=5)
    for _ in range(5):
        answer(db, rt, first.id, credential(db, rt, first), [0])
        answer(db, rt, second.id, credential(db, rt, second), [2])
    assert counts(ballots.results(db, rt, first)) == [5, 0, 0]
    assert counts(ballots.results(db, rt, second)) == [0, 0, 5]
    # The same ballot id with another log (a rolled-back test, a restored database) is another key.
    kept = result_cache.result_cache(rt)
    head = result_cache.log_head(db, second.id)
    assert head is not None
    assert kept.get(first.id, (first.key_id, first.kind, first.min_answers, 5, *head)) is None


def test_the_list_shows_what_each_reader_may_read_in_one_query(db: Session, rt: Runtime) -> None:
    organizer = factories.worker(db)
    shown = factories.open_petition(db, rt, creator=organizer, title="Publish the rota a month ahead")
    hidden = factories.open_petition(db, rt, creator=organizer, title="Fix the broken lockers")
    made = [
        pulse_ballot(db, rt),
        petition_ballot(db, rt, shown, organizer),
        petition_ballot(db, rt, hidden, organizer),
        pulse_ballot(db, rt),
        petition_ballot(db, rt, shown, organizer),
    ]
    hidden.state = "hidden"  # type: ignore[assignment]
    db.commit()
    ours = {ballot.id for ballot in made}
    readers = {
        "signed out": None,
        "a worker": factories.worker(db),
        "the organizer": organizer,
        "a moderator": factories.moderator(db),
    }
    every = list(db.scalars(select(Ballot).order_by(Ballot.id.desc())))
    for who, user in readers.items():
        expected = [b.id for b in every if ballots.visible_to(db=db, rt=rt, ballot=b, user=user)]
        listed = [b.id for b in ballots.list_visible(db=db, rt=rt, user=user, limit=1000)]
        assert listed == expected, who
        mine = [i for i in listed if i in ours]
        assert (made[2].id in mine) == (who in {"the organizer", "a moderator"}), who
        # Pages of it are slices of it.
        assert [b.id for b in ballots.list_visible(db=db, rt=rt, user=user, offset=1, limit=2)] == expected[1:3], who
