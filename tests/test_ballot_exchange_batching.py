"""The exchange of a signer credential for a signers' poll's credential (issue #25) with batching as in production:
nothing is written at the click, the exchanges wait in the accepting process's memory and are written together with
the batch, and one signer credential never earns two poll credentials, even sent to two processes.

Adversarial: the database is read as the operator reads it (raw rows, and on PostgreSQL each row's xmin, the
transaction that wrote it), between the click and the batch and after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.ballots import answers
from app.ballots import exchange as ballot_exchange
from app.ballots import log as ballot_log
from app.core import b64url, blindrsa
from app.core.runtime import Runtime
from app.models.anonymous import SignerKey
from app.models.ballots import Ballot
from app.models.petitions import Petition
from app.petitions import issuing_keys
from tests import factories
from tests.ballot_helpers import (  # noqa: F401 (fixtures: anonymous_client, batching_settings, queue)
    BATCH_SECONDS,
    accepted,
    anonymous_client,
    batching_settings,
    credential,
    petition_ballot,
    queue,
)

Pair = tuple[bytes, bytes]


def signer_credential(db: Session, rt: Runtime, petition: Petition) -> Pair:
    """A signer credential of the petition, as a signer's wallet holds it (blind-signed under its signer key)."""
    key = db.get_one(SignerKey, petition.id)
    public = blindrsa.PublicKey.from_spki(bytes(key.spki))
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(public, message)
    reply = issuing_keys.signer_for(key=key, rt=rt).blind_sign(blinded.blinded_msg)
    return message, blindrsa.finalize(public, message, reply, blinded.inv)


class Request:
    """One wallet's exchange request for a poll (a fresh blinded request for its credential)."""

    def __init__(self, ballot: Ballot, signer: Pair) -> None:
        self.public = blindrsa.PublicKey.from_spki(bytes(ballot.spki))
        self.ballot_id = ballot.id
        self.signer = signer
        self.message = blindrsa.prepare(secrets.token_bytes(32))
        self.blinded = blindrsa.blind(self.public, self.message)

    def send(self, client: TestClient) -> Any:
        client.cookies.clear()
        return client.post(
            f"/api/v1/ballots/{self.ballot_id}/exchange",
            json={
                "message": b64url.encode(self.signer[0]),
                "signature": b64url.encode(self.signer[1]),
                "blinded": b64url.encode(self.blinded.blinded_msg),
            },
        )

    def finalize(self, reply: dict[str, str]) -> Pair:
        blind = b64url.decode(reply["blind_signature"])
        return self.message, blindrsa.finalize(self.public, self.message, blind, self.blinded.inv)


def exchange_rows(db: Session) -> list[dict[str, Any]]:
    """What a copy of the database holds of exchanges, with PostgreSQL's xmin (the writing transaction) or SQLite's
    rowid (the order written)."""
    where = "xmin::text::bigint" if db.get_bind().dialect.name == "postgresql" else "rowid"
    rows = db.execute(text(f"SELECT ballot_id, signer_tag, blind_signature, {where} AS place FROM ballot_exchanges"))
    return [dict(row._mapping) for row in rows]


def waits(response: Any) -> None:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "waiting" and body["come_back_in_seconds"] == BATCH_SECONDS
    assert "next batch" in body["message"] and "5 min" in body["message"]


@contextmanager
def another_process(rt: Runtime) -> Iterator[None]:
    """A second server process on the same database: its own queues in memory (everything else is shared)."""
    kinds = (ballot_exchange.ExchangeQueue, answers.BallotQueue)
    mine = {kind: rt._parts.pop(kind, None) for kind in kinds}
    try:
        yield
    finally:
        for kind in kinds:
            rt._parts.pop(kind, None)
            if mine[kind] is not None:
                rt._parts[kind] = mine[kind]


def test_no_exchange_is_written_before_the_batch_and_the_batch_writes_them_together(
    db: Session, rt: Runtime, anonymous_client: TestClient, queue: Any, sessions: sessionmaker[Session]
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer)
    requests = [Request(ballot, signer_credential(db, rt, petition)) for _ in range(3)]  # k = 3
    db.commit()
    for request in requests:
        waits(request.send(anonymous_client))
        waits(request.send(anonymous_client))  # the same request again before the batch: waits still
    # Another request with a waiting signer credential: a second poll credential for one signer. Refused as ever.
    other = Request(ballot, requests[0].signer)
    refused = other.send(anonymous_client)
    assert refused.status_code == 409 and "already exchanged" in refused.json()["error"]["message"]
    # The operator's copy between the clicks and the batch: no exchange, no count moved, nothing handed out.
    db.expire_all()
    assert exchange_rows(db) == []
    assert db.get_one(Ballot, ballot.id).credentials_issued == 0
    assert answers.write_batch(sessions=sessions, rt=rt) == 0  # no answer yet; the exchanges are written
    rows = exchange_rows(db)
    assert len(rows) == 3
    if db.get_bind().dialect.name == "postgresql":
        assert len({row["place"] for row in rows}) == 1, "the exchanges were not written together"
    # Back after the batch: the same request gets its reply (200), a valid credential of the poll's key.
    for request in requests:
        reply = request.send(anonymous_client)
        assert reply.status_code == 200, reply.text
        message, signature = request.finalize(reply.json())
        blindrsa.verify(request.public, message, signature)
    assert other.send(anonymous_client).status_code == 409
    db.expire_all()
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    assert latest is not None and ballot_log.counters(latest.note)["credentials_issued"] == 3


def test_one_signer_credential_sent_to_two_processes_earns_one_poll_credential(
    db: Session, rt: Runtime, anonymous_client: TestClient, queue: Any, sessions: sessionmaker[Session]
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer, min_answers=None)
    signer = signer_credential(db, rt, petition)
    # Other signers' exchanges, so that the process that writes first holds k (3); the first holds two besides.
    companions = [Request(ballot, signer_credential(db, rt, petition)) for _ in range(4)]
    db.commit()
    first, second = Request(ballot, signer), Request(ballot, signer)
    waits(first.send(anonymous_client))
    for companion in companions[:2]:
        waits(companion.send(anonymous_client))
    with another_process(rt):
        # A third process is sent the first request again (a retry through the load balancer): it waits there too.
        waits(first.send(anonymous_client))
        with another_process(rt):
            # This process has no row and nothing waiting: it accepts another request with the same credential,
            # and its batch runs first.
            waits(second.send(anonymous_client))
            for companion in companions[2:]:
                waits(companion.send(anonymous_client))
            assert answers.write_batch(sessions=sessions, rt=rt) == 0
        assert answers.write_batch(sessions=sessions, rt=rt) == 0
    assert answers.write_batch(sessions=sessions, rt=rt) == 0
    db.expire_all()
    tag = ballot_exchange.signer_tag(ballot.id, signer[0])
    assert [row["signer_tag"] for row in exchange_rows(db)].count(tag) == 1
    # The first process's batch did not write the credential again, nor count it towards k: its two companions wait.
    assert len(exchange_rows(db)) == 3
    assert len(ballot_exchange.exchange_queue(rt)) == 2
    # The process that wrote first handed out its request's credential; the other request gets the refusal.
    assert second.send(anonymous_client).status_code == 200
    assert first.send(anonymous_client).status_code == 409
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).credentials_issued == 3


def test_an_exchange_waiting_at_the_close_is_written_by_the_last_batch(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    queue: Any,
    sessions: sessionmaker[Session],
    clock: Any,
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer, days=1)
    request = Request(ballot, signer_credential(db, rt, petition))
    db.commit()
    clock.advance(timedelta(days=1) - timedelta(minutes=7))
    waits(request.send(anonymous_client))  # alone, seven minutes before the close (the last a new one is taken)
    clock.advance(timedelta(minutes=16))  # past the close and its last batch's time: the jobs round erases the key
    jobs.run_once(sessions=sessions, rt=rt)
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).sealed_private is None
    answers.write_batch(sessions=sessions, rt=rt)  # the last batch: the waiting exchange is not lost
    db.expire_all()
    assert len(exchange_rows(db)) == 1
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    assert latest is not None and ballot_log.counters(latest.note)["credentials_issued"] == 1


def test_bad_requests_keep_their_refusals_with_batching_on(
    db: Session, rt: Runtime, anonymous_client: TestClient, queue: Any
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer)
    signer = signer_credential(db, rt, petition)
    db.commit()
    body = {"message": b64url.encode(signer[0]), "signature": b64url.encode(signer[1])}
    too_big = b64url.encode(b"\xff" * (blindrsa.PublicKey.from_spki(bytes(ballot.spki)).modulus_len))
    response = anonymous_client.post(f"/api/v1/ballots/{ballot.id}/exchange", json={**body, "blinded": too_big})
    assert response.status_code == 400 and "blinded" in response.json()["error"]["fields"]
    forged = {**body, "signature": b64url.encode(b"\x01" * len(signer[1])), "blinded": too_big}
    assert anonymous_client.post(f"/api/v1/ballots/{ballot.id}/exchange", json=forged).status_code == 400
    assert anonymous_client.post("/api/v1/ballots/999999/exchange", json={**body, "blinded": "AQ"}).status_code == 404
    db.expire_all()
    assert exchange_rows(db) == [] and len(ballot_exchange.exchange_queue(rt)) == 0


def test_a_signer_is_never_told_to_come_back_after_the_close(
    db: Session, rt: Runtime, anonymous_client: TestClient, queue: Any, sessions: sessionmaker[Session], clock: Any
) -> None:
    """Review: an exchange taken a minute before the close was answered 202 ("your answer follows"), written by the
    close's last batch and counted as issued, but the wallet coming back after the batch found the poll closed (409):
    the signer was locked out of the poll with a credential counted as handed out. A new exchange that cannot be
    written and come back for before the close is refused at once, in words; one taken earlier still completes."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer, days=1)
    early = Request(ballot, signer_credential(db, rt, petition))
    late = Request(ballot, signer_credential(db, rt, petition))
    db.commit()
    clock.advance(timedelta(days=1) - timedelta(seconds=2 * BATCH_SECONDS))
    waits(early.send(anonymous_client))  # two batches before the close: written by the next one
    answers.write_batch(sessions=sessions, rt=rt)
    clock.advance(timedelta(seconds=BATCH_SECONDS - 60))
    refused = late.send(anonymous_client)  # a minute before the close
    assert refused.status_code == 409, refused.text
    assert "closes" in refused.json()["error"]["message"]
    assert len(ballot_exchange.exchange_queue(rt)) == 0
    # The earlier signer, back after its batch and before the close, gets its credential as promised.
    clock.advance(timedelta(seconds=30))
    assert early.send(anonymous_client).status_code == 200
    db.expire_all()
    assert len(exchange_rows(db)) == 1


def test_an_exchange_already_written_elsewhere_does_not_make_up_a_group_of_k(
    db: Session, rt: Runtime, anonymous_client: TestClient, queue: Any, sessions: sessionmaker[Session]
) -> None:
    """Review: a retry sent to two processes waits in both; the first batch writes it, and the other process counted
    it still towards k, so its two answers went out as a group of "three" that wrote two: a poll with live results
    moved by fewer than k answers, telling them to anyone reading before and after. An exchange whose tag is
    already written counts for nothing: the group waits for company."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer, results_live=True)
    first = Request(ballot, signer_credential(db, rt, petition))
    companions = [Request(ballot, signer_credential(db, rt, petition)) for _ in range(2)]
    answering = [credential(db, rt, ballot) for _ in range(2)]
    db.commit()
    waits(first.send(anonymous_client))  # this process: the exchange, and two answers of others
    for cred in answering:
        accepted(anonymous_client, ballot, cred, [0])
    with another_process(rt):
        waits(first.send(anonymous_client))  # the wallet's retry, sent to another process: it waits there too
        for companion in companions:
            waits(companion.send(anonymous_client))
        answers.write_batch(sessions=sessions, rt=rt)  # k exchanges: written
    db.expire_all()
    assert len(exchange_rows(db)) == 3
    # This process's batch holds the retried exchange (written already) and two answers: two new entries, below k.
    assert answers.write_batch(sessions=sessions, rt=rt) == 0
    assert len(answers.ballot_queue(rt)) == 2


def test_a_batch_left_with_nothing_to_write_does_not_start_the_longest_wait(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    queue: Any,
    sessions: sessionmaker[Session],
    clock: Any,
) -> None:
    """A process whose only waiting exchange another process wrote has nothing to write: it must not note the poll's
    group as held from that hour, or an answer arriving hours later would find the longest wait already past and go
    out alone at once."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer)
    first = Request(ballot, signer_credential(db, rt, petition))
    companions = [Request(ballot, signer_credential(db, rt, petition)) for _ in range(2)]
    late = credential(db, rt, ballot)
    db.commit()
    waits(first.send(anonymous_client))
    with another_process(rt):
        waits(first.send(anonymous_client))
        for companion in companions:
            waits(companion.send(anonymous_client))
        answers.write_batch(sessions=sessions, rt=rt)
    answers.write_batch(sessions=sessions, rt=rt)  # this process: the retried exchange only, written already
    clock.advance(timedelta(hours=3))
    accepted(anonymous_client, ballot, late, [0])
    assert answers.write_batch(sessions=sessions, rt=rt) == 0  # alone: it waits its own longest wait
