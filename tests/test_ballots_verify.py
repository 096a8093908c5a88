"""`undersigned verify` on a ballot (issue #25): an honest log passes; the server's tampering, as an operator holding
the database and the log key would do it, is caught (a choice changed, a leaf dropped, a credential counted twice).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.ballots import answers
from app.ballots import log as ballot_log
from app.clients import ballots as ballot_client
from app.core import merkle
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.log.verifier import encode
from app.models.ballots import Ballot, BallotAnswer, BallotCheckpoint, BallotKind, BallotLeaf
from tests.ballot_helpers import credential, pulse_ballot

pytestmark = pytest.mark.one_database


def fetch_with(http: TestClient) -> ballot_client.Fetch:
    def fetch(path: str) -> tuple[int, Any]:
        response = http.get(path)
        return response.status_code, response.json()

    return fetch


def run_verify(http: TestClient, ballot: Ballot, state: Path) -> ballot_client.BallotReport:
    return ballot_client.verify(ballot_client.download(f"http://testserver/polls/{ballot.id}", fetch_with(http)), state)


@pytest.fixture
def answered(db: Session, rt: Runtime, clock: FrozenClock) -> Ballot:
    """A closed ranked ballot with six answers, one of them changed once."""
    ballot = pulse_ballot(db, rt, kind=BallotKind.ranked, options=["A", "B", "C"], days=1, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(6)]
    for cred, choice in zip(creds, ([0, 1], [1], [2, 1], [0], [1, 0], [2]), strict=True):
        answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=cred[0], signature=cred[1], choice=choice)
    answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=creds[5][0], signature=creds[5][1], choice=[0, 2])
    db.commit()
    clock.advance(timedelta(days=1))
    return ballot


def resign(db: Session, rt: Runtime, ballot: Ballot) -> None:
    """The operator signs a checkpoint over the log as it now stands (they hold the log key)."""
    size = ballot_log.size(db, ballot.id)
    db.execute(delete(BallotCheckpoint).where(BallotCheckpoint.ballot_id == ballot.id, BallotCheckpoint.size >= size))
    db.refresh(ballot)
    ballot_log.checkpoint(db, rt, ballot, rt.clock.now())
    db.commit()


def rewrite_leaf(db: Session, ballot: Ballot, index: int, **changes: object) -> None:
    leaf = db.get_one(BallotLeaf, (ballot.id, index))
    entry = {**json.loads(leaf.entry), **changes}
    leaf.entry = encode(entry)
    leaf.hash = merkle.leaf_hash(leaf.entry)
    db.commit()


def test_an_honest_ballot_log_passes(client: TestClient, answered: Ballot, tmp_path: Path) -> None:
    report = run_verify(client, answered, tmp_path / "state.json")
    assert report.ok, report.problems
    assert (report.size, report.answers, report.counted) == (8, 7, 6)
    assert "OK" in report.summary()


def test_a_changed_count_is_caught(db: Session, client: TestClient, answered: Ballot, tmp_path: Path) -> None:
    # The operator changes a counted answer's choice in the table the results are counted from.
    first = db.scalars(
        select(BallotAnswer).where(BallotAnswer.ballot_id == answered.id, BallotAnswer.choice == "[1]")
    ).one()
    db.execute(update(BallotAnswer).where(BallotAnswer.id == first.id).values(choice="[0]"))
    db.commit()
    report = run_verify(client, answered, tmp_path / "state.json")
    assert not report.ok and any("published counts" in problem for problem in report.problems)


def test_a_changed_choice_in_the_log_is_caught(
    db: Session, rt: Runtime, client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    assert run_verify(client, answered, state).ok
    rewrite_leaf(db, answered, 2, choice=[0])
    report = run_verify(client, answered, state)
    assert not report.ok and "the entries do not hash to the checkpoint's root" in report.problems
    # Signed again by the operator: the root seen before no longer matches the log's first entries.
    resign(db, rt, answered)
    report = run_verify(client, answered, state)
    assert any("rewritten" in problem for problem in report.problems), report.problems


def test_a_dropped_leaf_is_caught(
    db: Session, rt: Runtime, client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    assert run_verify(client, answered, state).ok
    last = ballot_log.size(db, answered.id) - 1
    db.execute(delete(BallotLeaf).where(BallotLeaf.ballot_id == answered.id, BallotLeaf.index == last))
    db.commit()
    report = run_verify(client, answered, tmp_path / "fresh.json")
    assert not report.ok  # the checkpoint covers the leaf the server no longer serves
    resign(db, rt, answered)
    assert any("removed" in problem for problem in run_verify(client, answered, state).problems)


def test_a_dropped_answer_is_caught_by_the_committed_counters(
    db: Session, rt: Runtime, client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    # The operator removes one worker's only answer from the log and signs again; this machine saw nothing before.
    entries = [json.loads(leaf.entry) for leaf in ballot_log.leaves(db=db, ballot_id=answered.id, start=0, end=99)]
    index = next(i for i, entry in enumerate(entries) if entry.get("choice") == [1])
    rest = [leaf.entry for leaf in ballot_log.leaves(db=db, ballot_id=answered.id, start=index + 1, end=99)]
    db.execute(delete(BallotLeaf).where(BallotLeaf.ballot_id == answered.id, BallotLeaf.index >= index))
    db.add_all(
        BallotLeaf(ballot_id=answered.id, index=index + i, entry=entry, hash=merkle.leaf_hash(entry))
        for i, entry in enumerate(rest)
    )
    db.commit()
    resign(db, rt, answered)
    problems = run_verify(client, answered, tmp_path / "fresh.json").problems
    assert any("commits 6 answers counted, the log holds 5" in problem for problem in problems), problems


def test_a_credential_counted_twice_is_caught(
    db: Session, rt: Runtime, client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    # The operator replays a worker's first answer as a second first revision, to count that credential twice.
    size = ballot_log.size(db, answered.id)
    replay = db.get_one(BallotLeaf, (answered.id, 1)).entry
    db.add(BallotLeaf(ballot_id=answered.id, index=size, entry=replay, hash=merkle.leaf_hash(replay)))
    db.commit()
    resign(db, rt, answered)
    problems = run_verify(client, answered, tmp_path / "fresh.json").problems
    assert any("revision 1 of a credential whose last revision was 1" in problem for problem in problems), problems


def test_a_forged_credential_is_caught(
    db: Session, rt: Runtime, client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    # A credential the ballot's key never signed (the operator making up answers without issuing them).
    other = pulse_ballot(db, rt)
    message, signature = credential(db, rt, other)
    size = ballot_log.size(db, answered.id)
    entry = encode(ballot_log.answer_entry(message=message, signature=signature, revision=1, choice=[1]))
    db.add(BallotLeaf(ballot_id=answered.id, index=size, entry=entry, hash=merkle.leaf_hash(entry)))
    db.commit()
    resign(db, rt, answered)
    problems = run_verify(client, answered, tmp_path / "fresh.json").problems
    assert any("not issued by the ballot's key" in problem for problem in problems), problems


def test_the_command_checks_a_ballot(
    client: TestClient, answered: Ballot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setattr(ballot_client, "fetcher", lambda base_url: fetch_with(client))
    result = CliRunner().invoke(
        cli, ["verify", f"http://testserver/polls/{answered.id}", "--state", str(tmp_path / "s.json")]
    )
    assert result.exit_code == 0, result.output
    assert "OK: 8 entries, 7 answers from 6 credentials" in result.output
    saved = tmp_path / "saved"
    again = CliRunner().invoke(
        cli,
        ["verify", f"http://testserver/polls/{answered.id}", "--save", str(saved), "--state", str(tmp_path / "t.json")],
    )
    assert again.exit_code == 0 and (saved / "ballot.json").exists(), again.output
    offline = CliRunner().invoke(cli, ["verify", "--offline", str(saved), "--state", str(tmp_path / "u.json")])
    assert offline.exit_code == 0 and "OK: 8 entries" in offline.output, offline.output


def test_before_the_result_verify_checks_what_is_published(
    db: Session, rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    ballot = pulse_ballot(db, rt, min_answers=5)
    for _ in range(2):
        message, signature = credential(db, rt, ballot)
        answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=[0])
    db.commit()
    report = run_verify(client, ballot, tmp_path / "state.json")
    assert report.ok and report.withheld, report.problems
    assert "2 counted answers are published with the result" in report.summary()
