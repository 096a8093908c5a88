"""Anonymous comments carried by the wallet's discussion credential: sent without cookies, published in hourly
batches with random ids, under a pseudonym only the credential's holder can compute, changed only with it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import batching
from app.anonymous import service as anonymous_signing
from app.comments import anonymous
from app.comments.digest import send_digests
from app.comments.queue import comment_queue
from app.core import blindrsa
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.anonymous import DiscussionIssuance, DiscussionKey
from app.models.comments import Comment
from app.models.petitions import Petition, PetitionEvent
from tests import factories
from tests.conftest import Browser, LogCapture, count_rows, dated_by_the_hour, make_settings, outbox, sign_in_as
from tests.test_anonymous import anonymous_client  # noqa: F401 (fixture)

NewBrowser = Callable[[], Browser]
Credential = tuple[bytes, bytes]
BATCHED = {"anonymous_batch_seconds": 300}


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    return make_settings(database_url, **{"rate_limit_comment": "1000/minute", **getattr(request, "param", {})})


@pytest.fixture
def petition(db: Session, rt: Runtime) -> Petition:
    return factories.open_petition(db, rt, allow_anonymous=True)


def collect(browser: Browser) -> dict[tuple[int, str], Credential]:
    """What the wallet does: every credential due, of both purposes, in one request."""
    due = browser.get("/api/v1/wallet").json()["due"]
    pending, requests = {}, []
    for key in due:
        public = blindrsa.PublicKey.from_spki(anonymous_signing.decode(key["spki"], field="spki"))
        message = blindrsa.prepare(secrets.token_bytes(32))
        blinded = blindrsa.blind(public, message)
        pending[(key["petition_id"], key["purpose"])] = (public, message, blinded)
        requests.append(
            {
                "petition_id": key["petition_id"],
                "purpose": key["purpose"],
                "blinded_message": anonymous_signing.encode(blinded.blinded_msg),
            }
        )
    response = browser.api("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    assert response.status_code == 200, response.text
    held = {}
    for item in response.json()["tokens"]:
        public, message, blinded = pending[(item["petition_id"], item["purpose"])]
        held[(item["petition_id"], item["purpose"])] = (
            message,
            blindrsa.finalize(
                public, message, anonymous_signing.decode(item["blind_signature"], field="s"), blinded.inv
            ),
        )
    return held


def credential_of(new_browser: NewBrowser, db: Session, petition: Petition) -> Credential:
    member = sign_in_as(new_browser(), db, factories.worker(db))
    return collect(member)[(petition.id, "discuss")]


def send(client: TestClient, petition: Petition, credential: Credential, body: str, **extra: object):
    client.cookies.clear()
    message, signature = credential
    return client.post(
        "/api/v1/anonymous/comments",
        json={
            "petition_id": petition.id,
            "message": anonymous_signing.encode(message),
            "signature": anonymous_signing.encode(signature),
            "body": body,
            **extra,
        },
    )


def change(client: TestClient, comment_id: int, credential: Credential, action: str, **extra: object):
    client.cookies.clear()
    message, signature = credential
    payload = {"message": anonymous_signing.encode(message), **extra}
    if action == "edit":
        payload["signature"] = anonymous_signing.encode(signature)
    return client.post(f"/api/v1/anonymous/comments/{comment_id}/{action}", json=payload)


def batch(connection: Connection, rt: Runtime) -> int:
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return anonymous.write_batch(sessions=sessions, rt=rt)


def moment(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_the_wallet_collects_a_discussion_credential_beside_the_signing_token(
    new_browser: NewBrowser, db: Session, petition: Petition
) -> None:
    member = sign_in_as(new_browser(), db, factories.worker(db))
    due = member.get("/api/v1/wallet").json()["due"]
    assert {(key["petition_id"], key["purpose"]) for key in due} == {(petition.id, "sign"), (petition.id, "discuss")}
    only_signing = [{"petition_id": petition.id, "purpose": "sign", "blinded_message": "AAAA"}]
    refused = member.api("POST", "/api/v1/wallet/tokens", {"tokens": only_signing})
    assert refused.status_code == 409 and "every credential due" in refused.text
    held = collect(member)
    assert set(held) == {(petition.id, "sign"), (petition.id, "discuss")}
    assert member.get("/api/v1/wallet").json()["due"] == []
    # The keys are published without a cookie, and differ: a discussion credential is no signing token.
    keys = new_browser().get("/api/v1/anonymous/keys").json()
    # (and the petition's signer key, issue #25: a third key, for a third kind of credential)
    assert {key["purpose"] for key in keys} == {"sign", "discuss", "signer"} and len(
        {key["key_id"] for key in keys}
    ) == 3
    assert db.get_one(DiscussionKey, petition.id).tokens_issued == 1
    (issued,) = db.query(DiscussionIssuance).all()
    assert issued.petition_id == petition.id and issued.blind_signature  # the day and the blind reply only


def test_a_discussion_credential_cannot_sign(
    new_browser: NewBrowser, db: Session, petition: Petition, anonymous_client: TestClient
) -> None:
    message, signature = credential_of(new_browser, db, petition)
    anonymous_client.cookies.clear()
    response = anonymous_client.post(
        "/api/v1/anonymous/signatures",
        json={
            "petition_id": petition.id,
            "message": anonymous_signing.encode(message),
            "signature": anonymous_signing.encode(signature),
        },
    )
    assert response.status_code == 422 and "not issued by its key" in response.text
    assert db.get_one(Petition, petition.id).signature_count == 0


@pytest.mark.parametrize("settings", [BATCHED], indirect=True)
def test_an_anonymous_comment_waits_for_the_hourly_batch_and_gets_a_random_id_and_the_hour(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    connection: Connection,
    anonymous_client: TestClient,
    server_logs: LogCapture,
) -> None:
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    named = factories.comment(db, rt, petition, body="By name")
    credentials = [credential_of(new_browser, db, petition) for _ in range(rt.settings.min_group_size)]
    server_logs.lines.clear()
    pseudonyms = []
    for number, credential in enumerate(credentials):
        clock.advance(timedelta(minutes=4, seconds=13))
        accepted = send(anonymous_client, petition, credential, f"Quiet point {number}")
        assert accepted.status_code == 202, accepted.text
        answer = accepted.json()
        assert answer["status"] == "queued" and 0 < answer["publish_within_seconds"] <= 3600 + 300
        assert answer["pseudonym"] == anonymous.pseudonym(credential[0])
        assert "set-cookie" not in accepted.headers
        pseudonyms.append(answer["pseudonym"])
    assert server_logs.lines == []  # not even route and time
    db.expire_all()
    assert db.get_one(Petition, petition.id).comment_count == 1 and len(comment_queue(rt)) == len(credentials)
    assert batch(connection, rt) == len(credentials)
    db.expire_all()
    rows = db.execute(text("SELECT * FROM comments WHERE pseudonym IS NOT NULL")).mappings().all()
    assert sorted(row["pseudonym"] for row in rows) == sorted(pseudonyms)
    assert {row["author_id"] for row in rows} == {None}
    hour = clock.now().replace(minute=0, second=0, microsecond=0, tzinfo=None)
    assert {moment(row["created_at"]).replace(tzinfo=None) for row in rows} == {hour}
    # Outside the named comments' sequence: the next named comment follows the last named one.
    assert all(row["id"] >= anonymous.ANONYMOUS_ID_FLOOR for row in rows)
    later = factories.comment(db, rt, petition, body="By name, later")
    assert later.id == named.id + 1
    db.expire_all()
    assert db.get_one(Petition, petition.id).comment_count == 2 + len(credentials)
    page = new_browser().get(f"/petitions/{petition.id}/comments?sort=newest").text
    assert all(name in page for name in pseudonyms)


@pytest.mark.parametrize("settings", [BATCHED], indirect=True)
def test_fewer_than_k_comments_wait_then_go_out_with_a_public_note(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    connection: Connection,
    anonymous_client: TestClient,
) -> None:
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    assert send(anonymous_client, petition, credential_of(new_browser, db, petition), "Alone").status_code == 202
    for _ in range(batching.max_delay_hours(rt.settings.anonymous_max_delay_seconds)):
        assert batch(connection, rt) == 0  # held: one comment alone would be its author's
        clock.advance(timedelta(hours=1))
    assert batch(connection, rt) == 1
    db.expire_all()
    notes = db.query(PetitionEvent).filter_by(petition_id=petition.id, kind="small_comment_batch").all()
    assert len(notes) == 1 and notes[0].public and notes[0].at.minute == 0
    assert "fewer colleagues" in (notes[0].detail or "")


def test_only_the_credential_that_wrote_a_comment_changes_it(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition, anonymous_client: TestClient
) -> None:
    mine, theirs = credential_of(new_browser, db, petition), credential_of(new_browser, db, petition)
    assert send(anonymous_client, petition, mine, "Anonymous words").status_code == 202
    comment = db.scalar(text("SELECT id FROM comments WHERE pseudonym IS NOT NULL"))
    refused = change(anonymous_client, comment, theirs, "edit", body="Not mine")
    assert refused.status_code == 403 and "did not write it" in refused.text
    assert change(anonymous_client, comment, theirs, "delete").status_code == 403
    edited = change(anonymous_client, comment, mine, "edit", body="Changed by me")
    assert edited.status_code == 200
    db.expire_all()
    stored = db.get_one(Comment, comment)
    assert stored.body == "Changed by me" and stored.edited_at is not None and stored.edited_at.minute == 0
    assert count_rows(db, "comment_revisions") == 1
    # The same account signed in is no author: only the credential is.
    member = sign_in_as(new_browser(), db, factories.worker(db))
    assert member.api("PATCH", f"/api/v1/comments/{comment}", {"body": "x"}).status_code == 403
    assert change(anonymous_client, comment, mine, "delete").status_code == 200
    assert change(anonymous_client, comment, mine, "delete").status_code == 409
    db.expire_all()
    assert db.get_one(Comment, comment).state == "deleted" and count_rows(db, "comment_revisions") == 0


def test_an_author_deletes_after_closing_when_the_key_is_gone(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition, anonymous_client: TestClient
) -> None:
    mine = credential_of(new_browser, db, petition)
    send(anonymous_client, petition, mine, "Before closing")
    comment = db.scalar(text("SELECT id FROM comments WHERE pseudonym IS NOT NULL"))
    from app.petitions import service as petitions

    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="deadline")
    db.commit()
    assert db.get_one(DiscussionKey, petition.id).sealed_private is None
    assert change(anonymous_client, comment, mine, "edit", body="After").status_code == 409
    assert send(anonymous_client, petition, mine, "After closing").status_code == 409
    assert change(anonymous_client, comment, mine, "delete").status_code == 200


@pytest.mark.parametrize(
    "case, status, words",
    [
        ("forged", 422, "not issued by its key"),
        ("signing_token", 422, "not issued by its key"),
        ("not_base64", 422, "not in the expected format"),
        ("empty", 422, ""),
        ("foreign_parent", 422, "not in this petition's discussion"),
        ("no_anonymity", 409, "does not take anonymous comments"),
        ("unknown_petition", 404, "no such petition"),
    ],
)
def test_bad_anonymous_comments_are_refused_clearly_and_write_nothing(
    case: str,
    status: int,
    words: str,
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    petition: Petition,
    anonymous_client: TestClient,
) -> None:
    member = sign_in_as(new_browser(), db, factories.worker(db))
    held = collect(member)
    message, signature = held[(petition.id, "discuss")]
    payload: dict[str, object] = {
        "petition_id": petition.id,
        "message": anonymous_signing.encode(message),
        "signature": anonymous_signing.encode(signature),
        "body": "Words",
    }
    if case == "forged":
        payload["signature"] = anonymous_signing.encode(bytes(len(signature)))
    elif case == "signing_token":
        token_message, token_signature = held[(petition.id, "sign")]
        payload.update(
            message=anonymous_signing.encode(token_message), signature=anonymous_signing.encode(token_signature)
        )
    elif case == "not_base64":
        payload["message"] = "!" * 60
    elif case == "empty":
        payload["body"] = "   "
    elif case == "foreign_parent":
        other = factories.open_petition(db, rt, title="Elsewhere", allow_anonymous=True)
        payload["parent_id"] = factories.comment(db, rt, other).id
    elif case == "no_anonymity":
        payload["petition_id"] = factories.open_petition(db, rt, title="Named only", allow_anonymous=False).id
    elif case == "unknown_petition":
        payload["petition_id"] = 999_999
    before = count_rows(db, "comments")
    anonymous_client.cookies.clear()
    response = anonymous_client.post("/api/v1/anonymous/comments", json=payload)
    assert response.status_code == status, response.text
    assert words in response.text and "Traceback" not in response.text
    assert count_rows(db, "comments") == before and len(comment_queue(rt)) == 0


def test_the_signed_in_form_refuses_anonymous_comments_in_plain_words(
    new_browser: NewBrowser, db: Session, petition: Petition
) -> None:
    member = sign_in_as(new_browser(), db, factories.worker(db))
    response = member.post(f"/petitions/{petition.id}/comments", {"body": "Hello", "anonymous": "1"})
    assert response.status_code == 422 and "sent by your wallet" in response.text
    assert count_rows(db, "comments") == 0


def test_the_pseudonym_is_the_credentials_and_not_the_accounts(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition, anonymous_client: TestClient
) -> None:
    """Two comments with one credential share a pseudonym; nothing the server holds (the deployment's secret
    included) computes it from an account: it is a hash of the credential's message, which only the wallet has."""
    mine = credential_of(new_browser, db, petition)
    first = send(anonymous_client, petition, mine, "One").json()["pseudonym"]
    second = send(anonymous_client, petition, mine, "Two").json()["pseudonym"]
    other = send(anonymous_client, petition, credential_of(new_browser, db, petition), "Three").json()["pseudonym"]
    assert first == second != other
    row = db.execute(text("SELECT author_proof, pseudonym FROM comments WHERE body = 'One'")).one()
    assert row.author_proof == anonymous.author_tag(mine[0]) and row.pseudonym == first
    assert anonymous.pseudonym(mine[0]) == first


def test_the_digest_remembers_by_flag_and_hour_not_id(
    new_browser: NewBrowser, db: Session, rt: Runtime, connection: Connection, petition: Petition, clock: FrozenClock
) -> None:
    organizer = db.get_one(Petition, petition.id).creator_id
    factories.comment(db, rt, petition, body="Named thought")
    factories.anonymous_comment(db, rt, petition, body="Anonymous thought")
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    clock.advance(timedelta(minutes=17, seconds=5))
    assert send_digests(sessions=sessions, rt=rt) == 1
    db.expire_all()
    sent_at = db.get_one(Petition, petition.id).comment_digest_sent_at
    assert sent_at is not None and (sent_at.minute, sent_at.second, sent_at.microsecond) == (0, 0, 0)
    assert "comment_digest_through" not in set(db.execute(text("SELECT * FROM petitions")).keys())
    assert db.scalar(text("SELECT count(*) FROM comments WHERE NOT digested")) == 0
    from app.models.accounts import User

    (digest,) = [m for m in outbox(db, to=db.get_one(User, organizer).email) if m.template == "comment_digest"]
    assert "Anonymous thought" in digest.body_text and "Named thought" in digest.body_text


def test_everyone_sees_how_many_colleagues_anonymous_commenters_hide_among(
    new_browser: NewBrowser, db: Session, petition: Petition
) -> None:
    reader = new_browser()
    assert reader.get(f"/api/v1/petitions/{petition.id}/anonymity").json()["discussion"] == 0
    for _ in range(3):
        credential_of(new_browser, db, petition)
    figures = reader.get(f"/api/v1/petitions/{petition.id}/anonymity").json()
    assert figures["discussion"] == 3 and figures["min_group_size"] == 5
    assert "Anonymous commenters are hidden among 3 colleagues" in reader.get(f"/petitions/{petition.id}").text


def test_a_nul_character_is_refused_at_once_not_by_the_batch(
    new_browser: NewBrowser, db: Session, petition: Petition, anonymous_client: TestClient
) -> None:
    """PostgreSQL cannot store it: accepted, it would fail its petition's batch hour after hour (found in review)."""
    response = send(anonymous_client, petition, credential_of(new_browser, db, petition), "Words\x00more")
    assert response.status_code == 422 and "NUL" in response.text
    assert count_rows(db, "comments") == 0


@pytest.mark.parametrize("settings", [{**BATCHED, "min_group_size": 1}], indirect=True)
def test_a_failing_batch_loses_nothing_it_took(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    anonymous_client: TestClient,
    server_logs: LogCapture,
) -> None:
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    published = factories.anonymous_comment(db, rt, petition, body="Published earlier")
    mine = credential_of(new_browser, db, petition)
    assert send(anonymous_client, petition, mine, "Waiting").status_code == 202
    tag = anonymous.author_tag(mine[0])
    db.execute(text("UPDATE comments SET author_proof = :tag WHERE id = :id"), {"tag": tag, "id": published.id})
    db.commit()
    assert change(anonymous_client, published.id, mine, "delete").status_code == 202

    def broken(**_kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(anonymous, "remove", broken)
    assert batch(connection, rt) == 0 and len(comment_queue(rt)) == 2  # both back in the queue
    [failed] = server_logs.entries("error")  # by the hour only, like the batch it speaks of
    assert "comment deletions failed" in failed["event"] and dated_by_the_hour(failed), failed
    monkeypatch.undo()
    assert batch(connection, rt) == 1 and len(comment_queue(rt)) == 0
    db.expire_all()
    assert db.get_one(Comment, published.id).state == "deleted"
