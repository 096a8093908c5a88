"""Ballot credentials (issue #25): a members poll's credential comes in the wallet's bundle; a signers poll's comes
only in exchange for the petition's signer credential, which a named signer collects in the bundle and an anonymous
signer receives at signing, cookie-less. Every credential derives from the wallet secret, as tokens do.

The adversarial tests at the end are the operator's join, as code: every row the server holds, and what it can
(not) tie together."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.anonymous import derive
from app.anonymous import service as anonymous
from app.ballots import answers
from app.ballots import exchange as ballot_exchange
from app.core import blindrsa
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.accounts import User
from app.models.anonymous import SignerIssuance, SignerKey, SignerReply
from app.models.ballots import Ballot, BallotAudience, BallotExchange, BallotIssuance
from app.models.petitions import Petition
from app.moderation import service as moderation
from tests import ballot_helpers, factories
from tests.conftest import Browser, make_settings, make_user, sign_in_as

NewBrowser = Callable[[], Browser]
Pair = tuple[bytes, bytes]
ALL = "sign,discuss,signer,ballot"


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    return make_settings(database_url, **getattr(request, "param", {}))


@pytest.fixture
def bare(app) -> Iterator[TestClient]:
    """The cookie-less side: what the browser sends with credentials: 'omit'."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


class Wallet:
    """What any device of one worker's wallet does, from its secret: collect what is due in one request, finalize."""

    def __init__(self, browser: Browser | None = None) -> None:
        self.browser = browser
        self.secret = derive.new_secret()
        self.held: dict[tuple[str, int], Pair] = {}

    @staticmethod
    def about(purpose: str, subject: int) -> dict[str, int]:
        return {"ballot_id": subject} if purpose == "ballot" else {"petition_id": subject}

    def credential(self, purpose: str, subject: int, key_id: str, spki: bytes) -> derive.Credential:
        public = blindrsa.PublicKey.from_spki(spki)
        return derive.credential(
            self.secret, purpose=purpose, key_id=key_id, public=public, **self.about(purpose, subject)
        )

    def collect(self, purposes: str = ALL, leave_out: set[tuple[str, int]] = frozenset()) -> Any:  # type: ignore[assignment]
        assert self.browser is not None
        state = self.browser.get(f"/api/v1/wallet?purposes={purposes}").json()
        requests, pending = [], {}
        for key in state["due"]:
            purpose = key["purpose"]
            subject = key["ballot_id"] if purpose == "ballot" else key["petition_id"]
            if (purpose, subject) in leave_out:
                continue
            spki = b64d(key["spki"])
            pending[(purpose, subject)] = (spki, self.credential(purpose, subject, key["key_id"], spki))
            requests.append(
                {
                    "purpose": purpose,
                    **self.about(purpose, subject),
                    "blinded_message": b64e(pending[(purpose, subject)][1].blinded_msg),
                }
            )
        response = self.browser.api("POST", "/api/v1/wallet/tokens", {"tokens": requests})
        if response.status_code == 200:
            for item in response.json()["tokens"]:
                purpose = item["purpose"]
                subject = item["ballot_id"] if purpose == "ballot" else item["petition_id"]
                spki, credential = pending[(purpose, subject)]
                public = blindrsa.PublicKey.from_spki(spki)
                self.held[(purpose, subject)] = (
                    credential.message,
                    credential.finalize(public, b64d(item["blind_signature"])),
                )
        return response


def sign_anonymously(bare: TestClient, wallet: Wallet, petition: Petition, db: Session, *, ask_signer: bool = True):
    """The wallet's cookie-less signature, asking for the signer credential with it."""
    message, signature = wallet.held[("sign", petition.id)]
    body: dict[str, object] = {"petition_id": petition.id, "message": b64e(message), "signature": b64e(signature)}
    signer = wallet.signer_request(db, petition) if ask_signer else None  # type: ignore[attr-defined]
    if signer is not None:
        body["signer_blinded"] = b64e(signer.blinded_msg)
    bare.cookies.clear()
    return bare.post("/api/v1/anonymous/signatures", json=body)


def _signer_request(self: Wallet, db: Session, petition: Petition) -> derive.Credential:
    key = db.get_one(SignerKey, petition.id)
    return self.credential("signer", petition.id, key.key_id, bytes(key.spki))


Wallet.signer_request = _signer_request  # type: ignore[attr-defined]


def keep_signer(wallet: Wallet, db: Session, petition: Petition, reply_b64: str) -> Pair:
    credential = wallet.signer_request(db, petition)  # type: ignore[attr-defined]
    key = db.get_one(SignerKey, petition.id)
    public = blindrsa.PublicKey.from_spki(bytes(key.spki))
    pair = (credential.message, credential.finalize(public, b64d(reply_b64)))
    wallet.held[("signer", petition.id)] = pair
    return pair


def exchange(bare: TestClient, wallet: Wallet, ballot: Ballot, *, signer: Pair | None = None, salt: bytes = b""):
    """Exchange the wallet's signer credential for the ballot's credential; keeps it on success."""
    assert ballot.petition_id is not None
    message, signature = signer or wallet.held[("signer", ballot.petition_id)]
    credential = wallet.credential("ballot", ballot.id, ballot.key_id, bytes(ballot.spki))
    blinded = credential.blinded_msg
    if salt:  # another request for the same ballot: what a second exchange would send
        other = blindrsa.blind(blindrsa.PublicKey.from_spki(bytes(ballot.spki)), blindrsa.prepare(salt * 32))
        blinded = other.blinded_msg
    bare.cookies.clear()
    response = bare.post(
        f"/api/v1/ballots/{ballot.id}/exchange",
        json={"message": b64e(message), "signature": b64e(signature), "blinded": b64e(blinded)},
    )
    if response.status_code == 200 and not salt:
        public = blindrsa.PublicKey.from_spki(bytes(ballot.spki))
        wallet.held[("ballot", ballot.id)] = (
            credential.message,
            credential.finalize(public, b64d(response.json()["blind_signature"])),
        )
    return response


def answer(db: Session, rt: Runtime, wallet: Wallet, ballot: Ballot, choice: list[int]) -> int:
    message, signature = wallet.held[("ballot", ballot.id)]
    return answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=choice)


def anonymous_petition(db: Session, rt: Runtime, organizer: User, title: str = "Publish the salary bands") -> Petition:
    return factories.open_petition(db, rt, creator=organizer, title=title, allow_anonymous=True)


# The bundle -------------------------------------------------------------------------------------------------


def test_a_wallet_from_before_polls_sees_and_asks_for_what_it_did(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    """A client that knows only signing tokens and discussion credentials is shown only those, and its request
    for all of them is honoured though a poll's and a signer credential are due too."""
    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    ballot_helpers.pulse_ballot(db, rt)
    named = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    member = sign_in_as(new_browser(), db, factories.worker(db))
    assert member.api("POST", f"/api/v1/petitions/{named.id}/signature", {"visibility": "public"}).status_code == 201
    old = member.get("/api/v1/wallet").json()
    assert sorted((item["purpose"], item["petition_id"]) for item in old["due"]) == [
        ("discuss", petition.id),
        ("sign", petition.id),
    ]
    assert all("ballot_id" not in item for item in old["due"])
    new = member.get(f"/api/v1/wallet?purposes={ALL}").json()
    assert sorted(item["purpose"] for item in new["due"]) == ["ballot", "discuss", "sign", "signer"]
    wallet = Wallet(member)
    collected = wallet.collect(purposes="sign,discuss")
    assert collected.status_code == 200, collected.text
    assert set(wallet.held) == {("sign", petition.id), ("discuss", petition.id)}
    # The rest later, all at once.
    later = wallet.collect()
    assert later.status_code == 200, later.text
    assert {purpose for purpose, _ in wallet.held} == {"sign", "discuss", "signer", "ballot"}


def test_a_members_poll_credential_comes_with_the_bundle_and_verifies_for_that_poll_only(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    first = ballot_helpers.pulse_ballot(db, rt)
    second = ballot_helpers.pulse_ballot(db, rt, question="Should Fridays be remote?")
    member = factories.worker(db)
    wallet = Wallet(sign_in_as(new_browser(), db, member))
    state = wallet.browser.get(f"/api/v1/wallet?purposes={ALL}").json()  # type: ignore[union-attr]
    assert [(item["ballot_id"], item["petition_id"]) for item in state["due"]] == [(first.id, None), (second.id, None)]
    # Picking one poll out of two says which one the worker means to answer: refused, nothing issued.
    picked = wallet.collect(leave_out={("ballot", second.id)})
    assert picked.status_code == 409
    assert f"ballot {second.id} (ballot)" in picked.json()["error"]["message"]
    assert db.scalar(select(BallotIssuance).where(BallotIssuance.account_id == member.id)) is None
    assert wallet.collect().status_code == 200
    db.expire_all()
    assert [db.get_one(Ballot, b.id).credentials_issued for b in (first, second)] == [1, 1]
    issuance = db.get_one(BallotIssuance, (member.id, first.id))
    assert issuance.issued_on == rt.clock.now().date()
    # Kept for another device of the wallet, which finalizes it from the secret alone.
    kept = wallet.browser.get(f"/api/v1/wallet?purposes={ALL}").json()  # type: ignore[union-attr]
    assert kept["due"] == []
    assert sorted(item["ballot_id"] for item in kept["issued"]) == [first.id, second.id]
    message, signature = wallet.held[("ballot", first.id)]
    assert answers.check_credential(first, message, signature)
    with pytest.raises(Exception, match="not valid|does not verify|another poll|this poll"):
        answers.check_credential(second, message, signature)
    assert answer(db, rt, wallet, first, [1]) == 0


def test_a_member_who_may_not_take_part_collects_no_poll_credential(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    """An account whose address is not the organization's (or not confirmed) is refused in plain words, and
    nothing is issued or counted."""
    ballot = ballot_helpers.pulse_ballot(db, rt)
    for email, verified in (("visitor@elsewhere.net", True), ("new@example.org", False)):
        outsider = make_user(db, email=email, verified=verified)
        db.commit()
        wallet = Wallet(sign_in_as(new_browser(), db, outsider))
        credential = wallet.credential("ballot", ballot.id, ballot.key_id, bytes(ballot.spki))
        request = {"purpose": "ballot", "ballot_id": ballot.id, "blinded_message": b64e(credential.blinded_msg)}
        refused = wallet.browser.api("POST", "/api/v1/wallet/tokens", {"tokens": [request]})  # type: ignore[union-attr]
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["message"]
        assert db.scalar(select(BallotIssuance).where(BallotIssuance.account_id == outsider.id)) is None
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).credentials_issued == 0


def test_a_closed_poll_is_no_longer_due_nor_its_credential_kept(
    new_browser: NewBrowser, db: Session, rt: Runtime, clock: Any
) -> None:
    ballot = ballot_helpers.pulse_ballot(db, rt, days=1)
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert wallet.collect().status_code == 200
    clock.advance(timedelta(days=2))
    state = wallet.browser.get(f"/api/v1/wallet?purposes={ALL}").json()  # type: ignore[union-attr]
    assert state["due"] == [] and state["issued"] == []
    assert ballot.id not in [key.get("ballot_id") for key in wallet.browser.get("/api/v1/anonymous/keys").json()]  # type: ignore[union-attr]


def test_a_hidden_petitions_poll_is_neither_due_nor_its_key_published(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    """A poll put to every member on a petition that moderators then hide can no longer be answered (answers.submit
    reads it as a signed-out reader would); its key must not stay in the public list nor its credential in every
    member's bundle, which told anyone that the hidden petition had a poll, and issued credentials for nothing."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, organizer)
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer, audience=BallotAudience.members)
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    listed = [key.get("ballot_id") for key in wallet.browser.get("/api/v1/anonymous/keys").json()]  # type: ignore[union-attr]
    due = wallet.browser.get(f"/api/v1/wallet?purposes={ALL}").json()["due"]  # type: ignore[union-attr]
    assert ballot.id in listed and ballot.id in [item.get("ballot_id") for item in due]

    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    listed = [key.get("ballot_id") for key in wallet.browser.get("/api/v1/anonymous/keys").json()]  # type: ignore[union-attr]
    due = wallet.browser.get(f"/api/v1/wallet?purposes={ALL}").json()["due"]  # type: ignore[union-attr]
    assert ballot.id not in listed
    assert ballot.id not in [item.get("ballot_id") for item in due]
    assert wallet.collect().status_code == 200
    assert db.scalar(select(func.count()).select_from(BallotIssuance).where(BallotIssuance.ballot_id == ballot.id)) == 0


# Signer credentials ----------------------------------------------------------------------------------------


def test_a_named_signer_collects_a_signer_credential_and_exchanges_it_once(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    member = factories.worker(db)
    browser = sign_in_as(new_browser(), db, member)
    wallet = Wallet(browser)
    # Not a signer yet: no signer credential, and a signers poll is never in the bundle.
    assert browser.get(f"/api/v1/wallet?purposes={ALL}").json()["due"] == []
    assert (
        browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}).status_code == 201
    )
    assert wallet.collect().status_code == 200
    assert set(wallet.held) == {("signer", petition.id)}
    db.expire_all()
    assert db.get_one(SignerKey, petition.id).tokens_issued == 1
    assert db.get(SignerIssuance, (member.id, petition.id)) is not None
    first = exchange(bare, wallet, ballot)
    assert first.status_code == 200, first.text
    assert "set-cookie" not in first.headers
    # A wallet that lost the answer asks again with the same request: the same reply, counted once.
    again = exchange(bare, wallet, ballot)
    assert again.status_code == 200 and again.json() == first.json()
    # Another request with the same signer credential: a second credential for one signer. Refused.
    second = exchange(bare, wallet, ballot, salt=b"x")
    assert second.status_code == 409
    assert "already exchanged" in second.json()["error"]["message"]
    db.expire_all()
    # The exchange writes its row only: the public count moves at the ballot's next checkpoint (here the answer's
    # batch, written at once with batching off), never at the exchange, which would date a first answer.
    assert db.scalar(select(func.count()).select_from(BallotExchange)) == 1
    assert db.get_one(Ballot, ballot.id).credentials_issued == 0
    assert answer(db, rt, wallet, ballot, [0]) == 0
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).credentials_issued == 1
    # Withdrawn: no longer due a signer credential (the one issued cannot be taken back: it is blind).
    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/signature").status_code == 204
    assert browser.get(f"/api/v1/wallet?purposes={ALL}").json()["due"] == []


def test_an_anonymous_signer_gets_the_signer_credential_at_signing_and_another_device_fetches_it(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient
) -> None:
    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert wallet.collect().status_code == 200
    signed = sign_anonymously(bare, wallet, petition, db)
    assert signed.status_code == 202, signed.text
    reply = signed.json()["signer_blind_signature"]
    keep_signer(wallet, db, petition, reply)
    # Another device derives the same request from the secret, and fetches the kept reply by the nullifier.
    nullifier = hashlib.sha256(wallet.held[("sign", petition.id)][0]).hexdigest()
    bare.cookies.clear()
    kept = bare.get(f"/api/v1/petitions/{petition.id}/signer-replies/{nullifier}")
    assert kept.status_code == 200 and kept.json() == {"blind_signature": reply}
    assert bare.get(f"/api/v1/petitions/{petition.id}/signer-replies/{'0' * 64}").status_code == 404
    db.expire_all()
    assert db.get_one(SignerKey, petition.id).tokens_issued == 1
    assert exchange(bare, wallet, ballot).status_code == 200
    assert answer(db, rt, wallet, ballot, [1]) == 0
    # A signature that asks for nothing answers as before.
    other = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert other.collect(purposes="sign,discuss").status_code == 200
    plain = sign_anonymously(bare, other, petition, db, ask_signer=False)
    assert plain.status_code == 202 and plain.json() == {"status": "queued", "publish_within_seconds": 0.0}


@pytest.mark.parametrize("settings", [{"anonymous_batch_seconds": 300, "min_group_size": 1}], indirect=True)
def test_with_batching_the_reply_is_kept_only_with_the_signature(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient, connection: Any
) -> None:
    """A reply handed out before the batch would let one token sent to two server processes earn two signer
    credentials, and a row written at submission would date it: the 202 says null, the batch keeps it."""
    from sqlalchemy.orm import sessionmaker

    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert wallet.collect().status_code == 200
    signed = sign_anonymously(bare, wallet, petition, db)
    assert signed.status_code == 202
    assert "signer_blind_signature" not in signed.json()
    nullifier = hashlib.sha256(wallet.held[("sign", petition.id)][0]).hexdigest()
    assert bare.get(f"/api/v1/petitions/{petition.id}/signer-replies/{nullifier}").status_code == 404
    assert db.scalar(select(SignerReply)) is None
    db.commit()
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 1
    kept = bare.get(f"/api/v1/petitions/{petition.id}/signer-replies/{nullifier}")
    assert kept.status_code == 200
    keep_signer(wallet, db, petition, kept.json()["blind_signature"])
    db.expire_all()
    assert db.get_one(SignerKey, petition.id).tokens_issued == 1


# Refusals --------------------------------------------------------------------------------------------------


def test_the_exchange_refuses_in_plain_words(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient, clock: Any
) -> None:
    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    elsewhere = anonymous_petition(db, rt, organizer, title="Another petition")
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    members_poll = ballot_helpers.petition_ballot(db, rt, petition, organizer, audience=BallotAudience.members)
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert wallet.collect().status_code == 200
    assert sign_anonymously(bare, wallet, petition, db).status_code == 202
    # A signing token is not a signer credential (separate keys), nor is a discussion credential.
    for purpose in ("sign", "discuss"):
        refused = exchange(bare, wallet, ballot, signer=wallet.held[(purpose, elsewhere.id)])
        assert refused.status_code == 400, refused.text
        assert "not valid for this poll's petition" in refused.json()["error"]["message"]
    # Nor is any of them, or a signer credential, a poll's credential: each verifies under its own key only.
    for purpose, subject in (("sign", elsewhere.id), ("discuss", elsewhere.id), ("sign", petition.id)):
        message, signature = wallet.held[(purpose, subject)]
        with pytest.raises(answers.Refused, match="not valid for this poll"):
            answers.submit(db=db, rt=rt, ballot_id=members_poll.id, message=message, signature=signature, choice=[0])
    # Another petition's signer credential.
    other = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert other.collect().status_code == 200
    signed = sign_anonymously(bare, other, elsewhere, db)
    foreign = keep_signer(other, db, elsewhere, signed.json()["signer_blind_signature"])
    assert exchange(bare, wallet, ballot, signer=foreign).status_code == 400
    # A poll put to every member takes no exchange.
    not_signers = exchange(bare, other, members_poll, signer=foreign)
    assert not_signers.status_code == 409 and "every member" in not_signers.json()["error"]["message"]
    # Malformed and missing.
    bare.cookies.clear()
    assert bare.post(f"/api/v1/ballots/{ballot.id}/exchange", json={"message": "x"}).status_code == 422
    short = {"message": b64e(b"m" * 8), "signature": "AA", "blinded": "AA"}
    assert bare.post(f"/api/v1/ballots/{ballot.id}/exchange", json=short).status_code == 422
    assert (
        bare.post(
            "/api/v1/ballots/999999/exchange", json={"message": "A" * 43, "signature": "AA", "blinded": "AA"}
        ).status_code
        == 404
    )
    # Closed.
    clock.advance(timedelta(days=8))
    closed = exchange(bare, other, ballot, signer=foreign)
    assert closed.status_code == 409 and "closed" in closed.json()["error"]["message"]
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).credentials_issued == 0
    assert db.scalar(select(BallotExchange)) is None


def test_a_signer_credential_of_a_closed_petition_still_opens_a_later_poll(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient
) -> None:
    """Leadership often responds after the petition closed: the signer key's private half is gone (no new signer
    credentials), its public half stays, so the credentials issued still exchange for a ratification poll."""
    from app.petitions import service as petitions

    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert wallet.collect().status_code == 200
    signed = sign_anonymously(bare, wallet, petition, db)
    keep_signer(wallet, db, petition, signed.json()["signer_blind_signature"])
    petitions.close(db=db, rt=rt, petition=petition, actor=organizer, reason="The organizers closed it.")
    db.commit()
    db.expire_all()
    key = db.get_one(SignerKey, petition.id)
    assert key.sealed_private is None and key.destroyed_at is not None

    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    # The open keys' list no longer names the signer key; the poll does, for a device finalizing a kept reply.
    bare.cookies.clear()
    listed = bare.get("/api/v1/anonymous/keys").json()
    assert not [k for k in listed if k["purpose"] == "signer" and k["petition_id"] == petition.id]
    assert bare.get(f"/api/v1/ballots/{ballot.id}").json()["signer_key"]["key_id"] == key.key_id
    assert exchange(bare, wallet, ballot).status_code == 200


# The operator's join ---------------------------------------------------------------------------------------


def _dump(db: Session) -> dict[str, list[dict[str, Any]]]:
    tables = [
        "signatures",
        "token_issuances",
        "spent_tokens",
        "signer_issuances",
        "signer_replies",
        "signer_keys",
        "ballot_issuances",
        "ballot_exchanges",
        "ballot_answers",
        "ballot_leaves",
    ]
    return {table: [dict(row._mapping) for row in db.execute(text(f"SELECT * FROM {table}"))] for table in tables}


def _values(rows: list[dict[str, Any]], *skip: str) -> set[bytes]:
    found = set()
    for row in rows:
        for name, value in row.items():
            if name in skip or value is None:
                continue
            found.add(bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode())
    return found


def test_the_operators_join_ties_no_answer_to_a_signature_or_an_account(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient
) -> None:
    """Three named and three anonymous signers answer a signers poll. The operator holds every row and the keys.
    Its join: (1) any value an answer row carries, found in another table; (2) every (exchange, answer) pair
    tested for whether the answer's credential could be that exchange's: the operator holds the poll's private key,
    so it can compute, for each pair, the blinding factor that would have made one from the other. It exists for
    every pair: the best the join can do is the whole set of exchanges, which is the whole set of signers."""
    organizer = factories.worker(db)
    petition = anonymous_petition(db, rt, organizer)
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    signers: list[tuple[User, Wallet]] = []
    for index in range(6):
        member = factories.worker(db)
        wallet = Wallet(sign_in_as(new_browser(), db, member))
        if index % 2:
            assert (
                wallet.browser.api(  # type: ignore[union-attr]
                    "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
                ).status_code
                == 201
            )
            assert wallet.collect().status_code == 200
            assert ("signer", petition.id) in wallet.held
        else:
            assert wallet.collect().status_code == 200
            signed = sign_anonymously(bare, wallet, petition, db)
            keep_signer(wallet, db, petition, signed.json()["signer_blind_signature"])
        signers.append((member, wallet))
    for index, (_member, wallet) in enumerate(signers):
        assert exchange(bare, wallet, ballot).status_code == 200
        answer(db, rt, wallet, ballot, [index % 3])
    db.expire_all()
    dump = _dump(db)
    assert len(dump["ballot_answers"]) == 6 and len(dump["ballot_exchanges"]) == 6
    # (1) No answer value (credential hash, message, signature) appears anywhere else but the poll's own log.
    answer_values = _values(
        dump["ballot_answers"], "id", "ballot_id", "revision", "choice", "counted_hour", "superseded", "log_index"
    )
    for table, rows in dump.items():
        if table in ("ballot_answers", "ballot_leaves"):
            continue
        assert not answer_values & _values(rows), table
    # Nor does any exchange or issuance value appear in the answers: they are blind replies.
    for table in ("ballot_exchanges", "signer_replies", "signer_issuances", "token_issuances"):
        assert not _values(dump[table], "ballot_id", "petition_id", "account_id", "issued_on", "burned") & _values(
            dump["ballot_answers"]
        ), table
    # No time beside an exchange or a kept reply; the issuances carry the day.
    assert set(dump["ballot_exchanges"][0]) == {"ballot_id", "signer_tag", "blind_signature"}
    assert set(dump["signer_replies"][0]) == {"petition_id", "nullifier", "blind_signature"}
    # (2) The joins on the numbers, with the poll's private key in hand (the operator holds it until the close).
    held = db.get_one(Ballot, ballot.id)
    assert held.sealed_private is not None
    private = blindrsa.PrivateKey.from_pem(
        rt.sealer.open(held.sealed_private, context=held.sealing_context).encode(), sealed_by_us=True
    )
    public = private.public
    requests = [
        pow(int.from_bytes(bytes(row["blind_signature"]), "big"), public.e, public.n)
        for row in dump["ballot_exchanges"]
    ]
    for row in dump["ballot_answers"]:
        # What the answer's credential signed: its encoded message (the signature to the power e).
        encoded = pow(int.from_bytes(bytes(row["signature"]), "big"), public.e, public.n)
        # The equality join (what a signing that is not blind gives away): no request is the answer's message.
        assert encoded not in requests
        # The blinding-factor join: the r with request = encoded * r^e (mod n), r = (request / encoded)^d, exists
        # for every exchange, so every signer who exchanged is as likely as any other.
        candidates = [
            request
            for request in requests
            if encoded
            * pow(pow(request * pow(encoded, -1, public.n) % public.n, private.d, public.n), public.e, public.n)
            % public.n
            == request
        ]
        assert len(candidates) == len(signers)


def test_exchanges_for_two_polls_carry_unrelated_tags(
    new_browser: NewBrowser, db: Session, rt: Runtime, bare: TestClient
) -> None:
    """The design's first tag (a hash of the signer credential alone) was the same for every poll of a petition:
    a copy of the database joined one signer's exchanges across polls. The tag now names the poll too."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    first = ballot_helpers.petition_ballot(db, rt, petition, organizer)
    second = ballot_helpers.petition_ballot(db, rt, petition, organizer, question="And the cooling?")
    wallet = Wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert (
        wallet.browser.api(  # type: ignore[union-attr]
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}
        ).status_code
        == 201
    )
    assert wallet.collect().status_code == 200
    assert exchange(bare, wallet, first).status_code == 200
    assert exchange(bare, wallet, second).status_code == 200
    db.expire_all()
    tags = {row.ballot_id: row.signer_tag for row in db.scalars(select(BallotExchange))}
    assert tags[first.id] != tags[second.id]
    # The first tag would have been one value, in both polls' rows.
    message = wallet.held[("signer", petition.id)][0]
    design_tag = hashlib.sha256(ballot_exchange.TAG_PREFIX + message).hexdigest()
    assert ballot_exchange.signer_tag(first.id, message) == tags[first.id]
    assert design_tag not in tags.values()
