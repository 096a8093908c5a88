"""A signers' poll names its petition's signers' key (issue #25): an anonymous signer's other device must finalize
the signer reply the server kept under that key, and a ratification usually opens after the petition closed, when
no open key lists it any more. Everything here is read without cookies, as the wallet reads it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.ballots import service as ballots
from app.core import blindrsa
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.anonymous import SignerKey
from app.petitions import service as petitions
from tests import ballot_helpers, factories
from tests.conftest import Browser, make_settings, sign_in_as
from tests.test_ballot_credentials import (  # noqa: F401 (fixture)
    Wallet,
    anonymous_petition,
    bare,
    exchange,
    sign_anonymously,
)

pytestmark = pytest.mark.one_database

NewBrowser = Callable[[], Browser]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, min_group_size=1)


def test_an_anonymous_signers_other_device_answers_after_the_close_from_public_reads_alone(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient
) -> None:
    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    laptop = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert laptop.collect().status_code == 200
    signed = sign_anonymously(bare, laptop, petition, db)
    assert signed.status_code == 202, signed.text
    petitions.close(db=db, rt=rt, petition=petition, actor=organizer, reason="The organizers closed it.")
    db.commit()
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    members = ballot_helpers.pulse_ballot(db, rt)

    # The phone holds the wallet's secret and nothing else: no key, no reply, no cookie.
    phone = Wallet()
    phone.secret = laptop.secret
    bare.cookies.clear()
    open_keys = bare.get("/api/v1/anonymous/keys").json()
    assert not [key for key in open_keys if key["purpose"] == "signer" and key.get("petition_id") == petition.id]
    read = bare.get(f"/api/v1/ballots/{ballot.id}")
    assert read.status_code == 200, read.text
    named = read.json()["signer_key"]
    assert named is not None, "the poll does not name its signers' key: the phone cannot finalize its reply"
    key = db.get_one(SignerKey, petition.id)
    assert named == {"key_id": key.key_id, "spki": named["spki"]} and b64d(named["spki"]) == bytes(key.spki)
    # The key named is the one the petition's log committed to at open, and its id is its SPKI's hash.
    entry = bare.get(f"/api/v1/petitions/{petition.id}/log/entries?start=0&limit=1").json()["entries"][0]["entry"]
    assert json.loads(b64d(entry))["signer_key_id"] == named["key_id"]
    assert hashlib.sha256(b64d(named["spki"])).hexdigest() == named["key_id"]

    # The phone finalizes the kept reply under the named key, exchanges it and answers: the laptop's credential.
    nullifier = hashlib.sha256(laptop.held[("sign", petition.id)][0]).hexdigest()
    kept = bare.get(f"/api/v1/petitions/{petition.id}/signer-replies/{nullifier}")
    assert kept.status_code == 200, kept.text
    request = phone.credential("signer", petition.id, named["key_id"], b64d(named["spki"]))
    public = blindrsa.PublicKey.from_spki(b64d(named["spki"]))
    signer = (request.message, request.finalize(public, b64d(kept.json()["blind_signature"])))
    assert exchange(bare, phone, ballot, signer=signer).status_code == 200
    db.expire_all()
    assert db.get_one(type(ballot), ballot.id).credentials_issued == 0  # not counted at the exchange,
    assert ballots.refresh_checkpoints(db=db, rt=rt) == 0  # nor at the jobs round: with the answers (at once here)
    message, signature = phone.held[("ballot", ballot.id)]
    answered = bare.post(
        f"/api/v1/ballots/{ballot.id}/answers",
        json={"message": b64e(message), "signature": b64e(signature), "choice": [0]},
    )
    assert answered.status_code == 202, answered.text
    db.expire_all()
    assert db.get_one(type(ballot), ballot.id).credentials_issued == 1

    # A members' poll has no signers' key, and the list says the same as the poll.
    assert bare.get(f"/api/v1/ballots/{members.id}").json()["signer_key"] is None
    listed = {item["id"]: item["signer_key"] for item in bare.get("/api/v1/ballots").json()}
    assert listed == {members.id: None, ballot.id: named}, listed
