"""Breakdowns (issue #25) with batching as in production: an answer's group waits with it in the process's memory,
a later answer with the same credential replaces both, the batch seals the group on the row, and a change of group
alone is a change of answer. Nothing about a group reaches a log line, with its time or without."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.ballots import answers, audiences
from app.ballots.answers import BallotQueue
from app.clients import ballots as ballot_client
from app.core import b64url
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.ballots import Ballot, BallotAnswer, BallotAudience, BallotIssuance, BallotKind
from app.models.signatures import GroupKind, SignerGroup
from app.signatures import groups as signer_groups
from tests import factories
from tests.ballot_helpers import (  # noqa: F401 (fixtures: anonymous_client, batching_settings, queue)
    BATCH_SECONDS,
    anonymous_client,
    batching_settings,
    credential,
    pulse_ballot,
    queue,
)
from tests.conftest import LogCapture
from tests.test_ballots_verify import fetch_with


def group(db: Session, rt: Runtime, kind: GroupKind, name: str, members: int) -> tuple[SignerGroup, list[User]]:
    made = signer_groups.add(db=db, rt=rt, kind=kind, name=name)
    db.flush()
    people = []
    for _ in range(members):
        person = factories.worker(db)
        audiences.set_member_groups(
            db=db,
            user=person,
            department=str(made.id) if kind is GroupKind.department else None,
            location=str(made.id) if kind is GroupKind.location else None,
        )
        people.append(person)
    db.commit()
    return made, people


def send(client: TestClient, ballot: Ballot, cred: tuple[bytes, bytes], choice: list[int], group_id: int | None) -> Any:
    body = {"message": b64url.encode(cred[0]), "signature": b64url.encode(cred[1]), "choice": choice, "group": group_id}
    return client.post(f"/api/v1/ballots/{ballot.id}/answers", json=body)


def groups_of(db: Session, rt: Runtime, ballot: Ballot) -> list[tuple[int, str, int | None, bool]]:
    db.expire_all()
    rows = db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id))
    return sorted((row.revision, row.choice, answers.answer_group(rt, row), row.superseded) for row in rows)


def test_the_group_waits_with_its_answer_and_a_new_group_is_a_change(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
    server_logs: LogCapture,
    tmp_path: Path,
) -> None:
    engineering, engineers = group(db, rt, GroupKind.department, "Engineering", 3)  # k = 3 in these settings
    lyon, lyonnais = group(db, rt, GroupKind.location, "Lyon", 3)
    ballot = pulse_ballot(
        db, rt, kind=BallotKind.ranked, options=["A", "B", "C"], audience=BallotAudience.groups, days=1,
        groups=[engineering.id, lyon.id], min_answers=3,
    )  # fmt: skip
    db.add_all(BallotIssuance(account_id=p.id, ballot_id=ballot.id, issued_on=date(2026, 11, 24)) for p in engineers)
    db.add_all(BallotIssuance(account_id=p.id, ballot_id=ballot.id, issued_on=date(2026, 11, 24)) for p in lyonnais)
    creds = [credential(db, rt, ballot) for _ in range(3)]
    db.commit()
    for cred, choice, group_id in (
        (creds[0], [0, 1], engineering.id),
        (creds[0], [0, 1], lyon.id),  # the same choice under another group, before the batch: replaces it
        (creds[1], [1], engineering.id),
        (creds[2], [2, 0], None),
    ):
        reply = send(anonymous_client, ballot, cred, choice, group_id)
        assert reply.status_code == 202 and reply.json()["counted_at_batch"] == BATCH_SECONDS, reply.text
    assert groups_of(db, rt, ballot) == [] and len(queue) == 3  # nothing written before the batch
    clock.advance(timedelta(minutes=6))
    assert answers.write_batch(sessions=sessions, rt=rt) == 3
    assert groups_of(db, rt, ballot) == [
        (1, "[0,1]", lyon.id, False),
        (1, "[1]", engineering.id, False),
        (1, "[2,0]", None, False),
    ]
    # Once counted, the same choice under another group is a change: the next revision supersedes the first.
    assert send(anonymous_client, ballot, creds[1], [1], engineering.id).status_code == 409
    assert send(anonymous_client, ballot, creds[1], [1], None).status_code == 202
    assert answers.write_batch(sessions=sessions, rt=rt) == 0  # alone: held
    clock.advance(timedelta(hours=2))  # the maximum delay lets the lone change out
    assert answers.write_batch(sessions=sessions, rt=rt) == 1
    assert [row for row in groups_of(db, rt, ballot) if row[1] == "[1]"] == [
        (1, "[1]", engineering.id, True),
        (2, "[1]", None, False),
    ]
    # At the close: ranked polls are broken down by first choice; every cell here is under k, so all suppressed.
    clock.advance(timedelta(days=1))
    breakdown = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()["breakdown"]
    assert breakdown["status"] == "shown"
    assert {row["name"]: row["counts"] for row in breakdown["rows"]} == {
        "Engineering": [None, None, None],
        "Lyon": [None, None, None],
        "Not given": [None, None, None],
    }
    data = ballot_client.download(f"http://testserver/polls/{ballot.id}", fetch_with(anonymous_client))
    assert ballot_client.verify(data, tmp_path / "state.json").ok
    # No log line tells a group, its id or its name, from any of these requests or batches.
    for line in server_logs.lines:
        assert "Engineering" not in line and "Lyon" not in line and '"group"' not in line, line
