"""Making ballots and their credentials in tests, as the wallet does (blind, have the ballot's key sign, finalize),
without the wallet's bundle; and the production-like batching that modules answering ballots import (its settings,
the cookie-less client, the answer queue, a sessionmaker on the test's connection)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.ballots import service as ballots
from app.ballots.answers import BallotQueue, ballot_queue
from app.ballots.exchange import exchange_queue
from app.core import b64url, blindrsa
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.accounts import Role, User
from app.models.ballots import Ballot, BallotAudience, BallotKind
from app.models.petitions import Petition
from tests import factories
from tests.conftest import make_settings

K = 3
BATCH_SECONDS = 300
BATCHING = {"anonymous_batch_seconds": BATCH_SECONDS, "min_group_size": K, "anonymous_max_delay_seconds": 7200}


def credential(db: Session, rt: Runtime, ballot: Ballot) -> tuple[bytes, bytes]:
    """A credential for the ballot, finalized as a wallet does; counted as issued, as issuance counts it."""
    public = blindrsa.PublicKey.from_spki(ballot.spki)
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(public, message)
    reply = ballots.signer_for(rt=rt, ballot=ballot).blind_sign(blinded.blinded_msg)
    ballot.credentials_issued += 1
    db.flush()
    return message, blindrsa.finalize(public, message, reply, blinded.inv)


def pulse_author(db: Session) -> User:
    return factories.worker(db, roles=(Role.responder,))


def pulse_ballot(
    db: Session,
    rt: Runtime,
    *,
    kind: BallotKind = BallotKind.single,
    options: list[str] | None = None,
    author: User | None = None,
    days: int = 7,
    **changes: object,
) -> Ballot:
    values: dict[str, object] = {
        "actor": author or pulse_author(db),
        "petition": None,
        "kind": kind,
        "question": "Should the office open at eight?",
        "options": ["Yes", "No", "Later"] if options is None and kind is not BallotKind.scale else (options or []),
        "max_choices": None,
        "audience": BallotAudience.members,
        "opens_at": None,
        "closes_at": rt.clock.now() + timedelta(days=days),
        "min_answers": None,
    }
    values.update(changes)
    ballot = ballots.create(db, rt, **values)  # type: ignore[arg-type]
    db.commit()
    return ballot


def petition_ballot(db: Session, rt: Runtime, petition: Petition, organizer: User, **changes: object) -> Ballot:
    changes.setdefault("audience", BallotAudience.signers)
    return pulse_ballot(db, rt, author=organizer, petition=petition, **changes)  # type: ignore[arg-type]


# -- batching as in production: a module imports these fixtures by name (`batching_settings` is `settings`) ---------


@pytest.fixture(name="settings")
def batching_settings(database_url: str) -> Settings:
    """Answers wait in the process's memory until a batch is run explicitly; k = 3."""
    return make_settings(database_url, **BATCHING)


@pytest.fixture
def anonymous_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def queue(rt: Runtime, anonymous_client: TestClient) -> Iterator[BallotQueue]:
    """The app's queue, emptied before the app shuts down (which would write what is left outside the test), and
    its waiting exchanges (app/ballots/exchange.py) with it."""
    yield ballot_queue(rt)
    for waiting in ballot_queue(rt).take():
        ballot_queue(rt).release(waiting.ballot_id)
    for exchange in exchange_queue(rt).take():
        ballot_queue(rt).release(exchange.ballot_id)


def send(client: TestClient, ballot_id: int, cred: tuple[bytes, bytes], choice: list[Any]) -> Any:
    body = {"message": b64url.encode(cred[0]), "signature": b64url.encode(cred[1]), "choice": choice}
    return client.post(f"/api/v1/ballots/{ballot_id}/answers", json=body)


def accepted(client: TestClient, ballot: Ballot, cred: tuple[bytes, bytes], choice: list[int]) -> None:
    """Sent, and taken for the next batch (202, counted at the batch interval)."""
    response = send(client, ballot.id, cred, choice)
    assert response.status_code == 202 and response.json()["counted_at_batch"] == BATCH_SECONDS, response.text
