"""Ballot answers in batches (issue #25): nothing is written before the batch, a later answer with the same
credential replaces a waiting one, a group below k waits (at most the maximum delay, or until the ballot closes), and
what is written carries random ids and the batch's hour only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.ballots import answers
from app.ballots.answers import BallotQueue
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.models.ballots import Ballot, BallotAnswer, BallotLeaf
from tests.ballot_helpers import (  # noqa: F401 (fixtures: anonymous_client, batching_settings, queue)
    accepted,
    anonymous_client,
    batching_settings,
    credential,
    pulse_ballot,
    queue,
)
from tests.conftest import LogCapture, dated_by_the_hour


def written(db: Session, ballot: Ballot) -> list[BallotAnswer]:
    db.expire_all()
    return list(db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id)))


def test_answers_wait_for_the_batch_and_the_last_one_counts(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    ballot = pulse_ballot(db, rt)
    creds = [credential(db, rt, ballot) for _ in range(3)]
    db.commit()
    accepted(anonymous_client, ballot, creds[0], [0])
    accepted(anonymous_client, ballot, creds[0], [1])  # changed before the batch: replaces the waiting one
    accepted(anonymous_client, ballot, creds[1], [2])
    assert written(db, ballot) == [] and len(queue) == 2
    assert answers.write_batch(sessions=sessions, rt=rt) == 0  # two waiting, fewer than k = 3: held
    assert len(queue) == 2
    accepted(anonymous_client, ballot, creds[2], [0])
    clock.advance(timedelta(minutes=17))
    assert answers.write_batch(sessions=sessions, rt=rt) == 3
    rows = written(db, ballot)
    assert sorted(row.choice for row in rows) == ["[0]", "[1]", "[2]"]  # creds[0]'s first answer never written
    assert all(row.revision == 1 for row in rows)
    assert {row.counted_hour for row in rows} == {datetime(2026, 11, 24, 9, tzinfo=UTC)}  # the hour only
    assert all(len(row.id) == 32 and int(row.id, 16) >= 0 for row in rows)  # random ids, no sequence
    db.refresh(ballot)
    assert ballot.answers_counted == 3 and len(queue) == 0


def test_a_small_group_goes_out_after_the_maximum_delay(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    ballot = pulse_ballot(db, rt)
    cred = credential(db, rt, ballot)
    db.commit()
    accepted(anonymous_client, ballot, cred, [1])
    assert answers.write_batch(sessions=sessions, rt=rt) == 0
    clock.advance(timedelta(hours=1))
    assert answers.write_batch(sessions=sessions, rt=rt) == 0
    clock.advance(timedelta(hours=1))
    assert answers.write_batch(sessions=sessions, rt=rt) == 1
    assert [row.choice for row in written(db, ballot)] == ["[1]"]


def test_a_closing_ballots_answers_go_out_and_count(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    ballot = pulse_ballot(db, rt, days=1)
    cred = credential(db, rt, ballot)
    db.commit()
    clock.advance(timedelta(hours=23, minutes=58))
    accepted(anonymous_client, ballot, cred, [2])  # accepted while open
    clock.advance(timedelta(minutes=5))  # the batch runs after the close
    assert answers.write_batch(sessions=sessions, rt=rt) == 1
    leaves = db.scalars(select(BallotLeaf).where(BallotLeaf.ballot_id == ballot.id)).all()
    assert len(leaves) == 2


def test_a_failed_batch_keeps_its_answers(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    server_logs: LogCapture,
) -> None:
    ballot = pulse_ballot(db, rt, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(3)]
    db.commit()
    for cred in creds:
        accepted(anonymous_client, ballot, cred, [0])

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(answers, "_write_group", broken)
    assert answers.write_batch(sessions=sessions, rt=rt) == 0
    assert len(queue) == 3 and written(db, ballot) == []
    # Said in the log by the hour only: with batching off the batch is the answer's own moment.
    [failed] = server_logs.entries("error")
    assert "ballot answers failed" in failed["event"] and dated_by_the_hour(failed), failed
    monkeypatch.undo()
    assert answers.write_batch(sessions=sessions, rt=rt) == 3


def test_a_small_closing_batch_is_foretold_on_the_poll_page_and_said_after(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The linkage suite's finding (issue #25): the closing batch goes out whatever its size, so one answer sent in
    the last minutes hides only among the accounts active then. A reader of the rows (`counted_hour`) or of the
    checkpoints' tree sizes sees that batch's size; the person answering must be told before, and everyone after,
    as a petition's timeline says of a small batch of signatures."""
    ballot = pulse_ballot(db, rt, days=1)
    early = [credential(db, rt, ballot) for _ in range(3)]
    late = credential(db, rt, ballot)
    db.commit()
    for cred in early:
        accepted(anonymous_client, ballot, cred, [0])
    assert answers.write_batch(sessions=sessions, rt=rt) == 3  # k = 3 together: no note
    page = anonymous_client.get(f"/polls/{ballot.id}").text
    assert "data-closing-soon" not in page and "data-small-batch" not in page

    clock.advance(timedelta(hours=23, minutes=58))
    page = anonymous_client.get(f"/polls/{ballot.id}").text
    assert "data-closing-soon" in page and "if fewer than 3 people answer from now on" in page
    accepted(anonymous_client, ballot, late, [1])
    clock.advance(timedelta(minutes=5))  # the closing batch: one answer, below k, let out all the same
    assert answers.write_batch(sessions=sessions, rt=rt) == 1

    page = anonymous_client.get(f"/polls/{ballot.id}").text
    assert "data-closing-soon" not in page
    (note,) = [line for line in page.splitlines() if "data-small-batch" in line]
    assert "1 answer was counted in the hour from" in note and "in a batch smaller than 3" in note
