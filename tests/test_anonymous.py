"""Anonymous signing through the real HTTP flow: bundled issuance, cookie-less submission, refusals, and what a
dump of every table and the logs can (not) tell."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import service as anonymous
from app.anonymous.queue import anonymous_queue
from app.core import blindrsa
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.accounts import User
from app.models.petitions import Petition
from app.petitions import service as petitions
from tests import factories
from tests.conftest import Browser, LogCapture, count_rows, make_settings, redis_url, sign_in_as

NewBrowser = Callable[[], Browser]
Token = tuple[bytes, bytes]


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    return make_settings(database_url, **getattr(request, "param", {}))


def open_anonymous(db: Session, rt: Runtime, title: str = "Stop recording our screens") -> Petition:
    return factories.open_petition(db, rt, title=title, allow_anonymous=True)


def wallet(browser: Browser, *, only: set[int] | None = None) -> tuple[dict[int, Token], Any]:
    """What the browser's wallet does: ask what is due, blind a fresh token for each, ask for all at once."""
    due = browser.get("/api/v1/wallet").json()["due"]
    pending = {}
    requests = []
    for key in due:
        if only is not None and key["petition_id"] not in only:
            continue
        public = blindrsa.PublicKey.from_spki(anonymous.decode(key["spki"], field="spki"))
        message = blindrsa.prepare(secrets.token_bytes(32))
        blinded = blindrsa.blind(public, message)
        pending[(key["petition_id"], key["purpose"])] = (public, message, blinded)
        requests.append(
            {
                "petition_id": key["petition_id"],
                "purpose": key["purpose"],
                "blinded_message": anonymous.encode(blinded.blinded_msg),
            }
        )
    response = browser.api("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    tokens = {}  # the signing tokens (the discussion credentials are collected too, as the wallet does)
    if response.status_code == 200:
        for item in response.json()["tokens"]:
            public, message, blinded = pending[(item["petition_id"], item["purpose"])]
            signature = blindrsa.finalize(
                public, message, anonymous.decode(item["blind_signature"], field="s"), blinded.inv
            )
            if item["purpose"] == "sign":
                tokens[item["petition_id"]] = (message, signature)
    return tokens, response


def submit(client: TestClient, petition_id: int, token: Token):
    """As the browser sends it: no cookies at all (credentials: 'omit')."""
    client.cookies.clear()
    message, signature = token
    return client.post(
        "/api/v1/anonymous/signatures",
        json={
            "petition_id": petition_id,
            "message": anonymous.encode(message),
            "signature": anonymous.encode(signature),
        },
    )


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def count(db: Session, petition: Petition) -> int:
    db.expire_all()
    return db.get_one(Petition, petition.id).signature_count


def test_a_member_signs_anonymously_and_the_entry_is_published(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    other = open_anonymous(db, rt, title="Publish the salary bands")
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, response = wallet(member)
    assert response.status_code == 200 and set(tokens) == {petition.id, other.id}
    accepted = submit(anonymous_client, petition.id, tokens[petition.id])
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"status": "queued", "publish_within_seconds": 0.0}
    assert "set-cookie" not in accepted.headers
    assert count(db, petition) == 1 and count(db, other) == 0
    row = db.execute(
        text("SELECT account_id, visibility, public_name, sealed_name FROM signatures WHERE petition_id = :p"),
        {"p": petition.id},
    ).one()
    assert tuple(row) == (None, "anonymous", None, None)
    ledger = new_browser().get(f"/api/v1/petitions/{petition.id}/anonymous-signatures").json()
    assert ledger["tokens_issued"] == 1 and ledger["anonymous_signatures"] == 1
    (entry,) = ledger["entries"]
    assert anonymous.decode(entry["message"], field="m") == tokens[petition.id][0]
    # Anyone can check the entry against the published key.
    public = blindrsa.PublicKey.from_spki(anonymous.decode(ledger["spki"], field="spki"))
    blindrsa.verify(public, tokens[petition.id][0], anonymous.decode(entry["signature"], field="s"))
    assert public.key_id() == ledger["key_id"]
    # The wallet has nothing more to ask for, and can collect what it was issued if it missed the reply.
    state = member.get("/api/v1/wallet").json()
    assert state["due"] == [] and {item["petition_id"] for item in state["issued"]} == {petition.id, other.id}


@pytest.mark.parametrize("case", ["double_spend", "other_petition", "forged", "after_close", "garbage"])
def test_bad_tokens_are_refused_and_nothing_is_counted(
    case: str, new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    other = open_anonymous(db, rt, title="Another petition")
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    token = tokens[petition.id]
    expected = {"double_spend": 409, "other_petition": 422, "forged": 422, "after_close": 409, "garbage": 422}[case]
    if case == "double_spend":
        assert submit(anonymous_client, petition.id, token).status_code == 202
    elif case == "other_petition":
        token = tokens[other.id]
    elif case == "forged":
        token = (token[0], bytes([token[1][0] ^ 1]) + token[1][1:])
    elif case == "after_close":
        petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="done")
        db.commit()
    elif case == "garbage":
        token = (b"short", b"\x00")
    before = (count(db, petition), count_rows(db, "signatures"), count_rows(db, "spent_tokens"))
    response = submit(anonymous_client, petition.id, token)
    assert response.status_code == expected, response.text
    assert response.json()["error"]["message"]
    assert (count(db, petition), count_rows(db, "signatures"), count_rows(db, "spent_tokens")) == before


def test_a_request_that_picks_some_petitions_is_refused(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    first = open_anonymous(db, rt)
    second = open_anonymous(db, rt, title="Second")
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, response = wallet(member, only={first.id})
    assert response.status_code == 409 and not tokens
    assert response.json()["error"]["fields"]["tokens"] == (
        f"{first.id} (discuss), {first.id} (sign), {second.id} (discuss), {second.id} (sign)"
    )
    assert count_rows(db, "token_issuances") == 0
    # Asking for one twice is no better.
    due = member.get("/api/v1/wallet").json()["due"]
    doubled = [{"petition_id": first.id, "blinded_message": "AAAA"}] * 2 + [
        {"petition_id": second.id, "blinded_message": "AAAA"}
    ]
    assert member.api("POST", "/api/v1/wallet/tokens", {"tokens": doubled}).status_code == 409
    assert len(due) == 4 and count_rows(db, "token_issuances") == 0  # a signing token and a discussion credential
    tokens, response = wallet(member)
    assert response.status_code == 200 and set(tokens) == {first.id, second.id}
    # Issued once: a second request finds nothing due and gets nothing.
    again, response = wallet(member)
    assert response.status_code == 200 and again == {}
    db.expire_all()
    rows = db.execute(text("SELECT * FROM token_issuances")).mappings().all()
    assert {row["petition_id"] for row in rows} == {first.id, second.id}
    # The day, nothing finer; and the issuer's blind reply, which matches no published token without the
    # browser's secret blinding factor; whether a signature with the account's name used the right (no token).
    assert set(rows[0]) == {"account_id", "petition_id", "issued_on", "blind_signature", "burned"}
    assert not any(row["burned"] for row in rows)


def test_nobody_signs_both_ways(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    # Signed with a name first: no token is ever issued for that petition.
    named = sign_in_as(new_browser(), db, factories.worker(db))
    assert named.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}).status_code == 201
    tokens, response = wallet(named)
    assert response.status_code == 200 and tokens == {}
    # Holding a token: signing with a name needs it, spends it, and it cannot then be used anonymously.
    holder = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(holder)
    plain = holder.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"})
    assert plain.status_code == 409 and "token" in plain.json()["error"]["message"]
    page = holder.post(f"/petitions/{petition.id}/sign", {"visibility": "organizers"})
    assert page.status_code in (303, 409)
    message, signature = tokens[petition.id]
    signed = holder.api(
        "POST",
        f"/api/v1/petitions/{petition.id}/signature",
        {
            "visibility": "organizers",
            "token": {"message": anonymous.encode(message), "signature": anonymous.encode(signature)},
        },
    )
    assert signed.status_code == 201, signed.text
    assert count(db, petition) == 2
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 409
    assert count(db, petition) == 2


def test_the_key_is_made_at_opening_sealed_and_destroyed_at_closing(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    petition = open_anonymous(db, rt)
    named_only = factories.open_petition(db, rt, title="Named only")
    stored = db.execute(
        text("SELECT key_id, spki, sealed_private FROM issuing_keys WHERE petition_id = :p"), {"p": petition.id}
    ).one()
    assert b"PRIVATE KEY" not in bytes(stored.sealed_private)  # sealed, never plain
    assert blindrsa.PublicKey.from_spki(bytes(stored.spki)).key_id() == stored.key_id
    assert (
        db.execute(text("SELECT count(*) FROM issuing_keys WHERE petition_id = :p"), {"p": named_only.id}).scalar_one()
        == 0
    )
    listed = new_browser().get("/api/v1/anonymous/keys").json()
    # Every petition has a signer key too (issue #25), named signatures only or not.
    assert sorted((key["petition_id"], key["purpose"]) for key in listed) == [
        (petition.id, "discuss"),
        (petition.id, "sign"),
        (petition.id, "signer"),
        (named_only.id, "signer"),
    ]
    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="done")
    db.commit()
    after = db.execute(
        text("SELECT sealed_private, destroyed_at FROM issuing_keys WHERE petition_id = :p"), {"p": petition.id}
    ).one()
    assert after.sealed_private is None and after.destroyed_at is not None
    assert [(key["petition_id"], key["purpose"]) for key in new_browser().get("/api/v1/anonymous/keys").json()] == [
        (named_only.id, "signer")
    ]
    timeline = new_browser().get(f"/api/v1/petitions/{petition.id}/timeline").json()
    assert any(event["kind"] == "issuing_key_destroyed" for event in timeline)


def test_submissions_leave_no_log_line(
    new_browser: NewBrowser, db: Session, rt: Runtime, server_logs: LogCapture, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    server_logs.lines.clear()
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 409
    assert server_logs.lines == []
    new_browser().get("/healthz")
    assert server_logs.lines  # the capture works: other requests are logged


@pytest.mark.parametrize("settings", [{"anonymous_batch_seconds": 300, "min_group_size": 1}], indirect=True)
def test_a_dump_of_every_table_and_the_logs_cannot_say_who_signed_anonymously(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    connection: Connection,
    clock,
    server_logs: LogCapture,
    anonymous_client: TestClient,
) -> None:
    petition = open_anonymous(db, rt)
    members: list[tuple[User, Token]] = []
    for _ in range(50):
        user = factories.worker(db)
        tokens, response = wallet(sign_in_as(new_browser(), db, user))
        assert response.status_code == 200
        members.append((user, tokens[petition.id]))
        clock.advance(timedelta(minutes=1))
    submitted = []
    for _user, token in reversed(members):  # in some order unrelated to issuance
        assert submit(anonymous_client, petition.id, token).status_code == 202
        submitted.append(token[0])
        clock.advance(timedelta(seconds=37))
    assert count(db, petition) == 0 and len(anonymous_queue(rt)) == 50  # accepted, nothing written yet
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 50
    assert count(db, petition) == 50

    db.expire_all()
    dialect = db.get_bind().dialect.name
    order = "rowid" if dialect == "sqlite" else "ctid"
    rows = (
        db.execute(text(f"SELECT * FROM signatures WHERE petition_id = :p ORDER BY {order}"), {"p": petition.id})
        .mappings()
        .all()
    )
    messages = [bytes(row["token_message"]) for row in rows]
    assert sorted(messages) == sorted(submitted)
    # No account, no name, one hour for all: the batch's.
    assert {row["account_id"] for row in rows} == {None}
    assert len({str(row["signed_hour"]) for row in rows}) == 1
    # Neither storage order nor id order follows submission (or issuance) order.
    by_id = [bytes(row["token_message"]) for row in sorted(rows, key=lambda row: row["id"])]
    issued = [token[0] for _user, token in members]
    for candidate in (messages, by_id):
        assert candidate not in (submitted, issued, submitted[::-1], issued[::-1])
    # Nothing else in the database holds a token's message, and no table pairs an account with a nullifier.
    tables = inspect(connection).get_table_names()
    hexes = {message.hex() for message in submitted} | {anonymous.nullifier(message) for message in submitted}
    for table in tables:
        columns = [column["name"] for column in inspect(connection).get_columns(table)]
        for row in db.execute(text(f"SELECT * FROM {table}")).mappings():
            values = " ".join(str(value) for value in row.values())
            if table == "spent_tokens":
                assert "account_id" not in columns and "user_id" not in columns
            elif table != "signatures":
                assert not any(value in values for value in hexes), table
    issuances = db.execute(text("SELECT * FROM token_issuances WHERE petition_id = :p"), {"p": petition.id}).all()
    assert len(issuances) == 50 and len({row.issued_on for row in issuances}) == 1
    # The logs hold no trace of the submissions.
    assert "anonymous" not in server_logs.text


def test_the_sign_panel_offers_anonymity_only_with_the_wallet(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    page = member.get(f"/petitions/{petition.id}").text
    # The choice is there for the wallet to reveal; without JavaScript it stays hidden and the page says why.
    assert "data-anonymous-choice hidden" in page and "Signing anonymously needs JavaScript" in page
    assert '<script src="/static/wallet.js" defer></script>' in page
    named_only = factories.open_petition(db, rt, title="Named only")
    assert "data-anonymous-choice" not in member.get(f"/petitions/{named_only.id}").text
    assert "/static/wallet.js" not in new_browser().get(f"/petitions/{petition.id}").text  # signed out: no wallet


def test_the_petition_page_shows_the_public_check_and_the_key(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    submit(anonymous_client, petition.id, tokens[petition.id])
    page = new_browser().get(f"/petitions/{petition.id}").text
    assert "1 anonymous signature of 1 token issued" in " ".join(page.split())  # however the template is indented
    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="done")
    db.commit()
    page = new_browser().get(f"/petitions/{petition.id}").text
    assert ", destroyed" in page and "Anonymous-signing key destroyed" in page


def test_the_server_command_keeps_uvicorn_from_logging_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own request log skips anonymous submissions; uvicorn's access log (address, path, time) is off."""
    import uvicorn
    from typer.testing import CliRunner

    from app.cli import cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    assert CliRunner().invoke(cli, ["serve", "--workers", "2"]).exit_code == 0
    assert seen["access_log"] is False and seen["proxy_headers"] is False


# -- found in review --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"anonymous_batch_seconds": 300, "min_group_size": 1}], indirect=True)
def test_signatures_accepted_before_the_close_count_after_it(
    new_browser: NewBrowser, db: Session, rt: Runtime, connection: Connection, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202
    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="deadline")
    db.commit()
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 1
    assert count(db, petition) == 1


@pytest.mark.parametrize("settings", [{"anonymous_batch_seconds": 300, "min_group_size": 1}], indirect=True)
def test_a_batch_that_fails_is_kept_for_the_next(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    connection: Connection,
    anonymous_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = open_anonymous(db, rt), open_anonymous(db, rt, title="Second")
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    for petition in (first, second):
        assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202
    original = anonymous._write_group
    calls = []

    def flaky(db, rt, petition_id, group):
        calls.append(petition_id)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return original(db, rt, petition_id, group)

    monkeypatch.setattr(anonymous, "_write_group", flaky)
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 1  # the other petition's entry still written
    assert len(anonymous_queue(rt)) == 1
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 1
    assert (count(db, first), count(db, second)) == (1, 1)


def test_a_trailing_slash_on_the_submission_route_is_not_logged_either(
    anonymous_client: TestClient, server_logs: LogCapture
) -> None:
    server_logs.lines.clear()
    anonymous_client.cookies.clear()
    response = anonymous_client.post("/api/v1/anonymous/signatures/", json={})
    assert response.status_code in (307, 404, 422) and "set-cookie" not in response.headers
    assert server_logs.lines == []


REDIS_URL = redis_url(15)


@pytest.fixture
def redis_db():
    import redis

    from tests.conftest import missing

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure to reach Redis
        missing(f"Redis is not running at {REDIS_URL} ({error})")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.parametrize(
    "settings", [{"anonymous_batch_seconds": 300, "min_group_size": 1, "redis_url": REDIS_URL}], indirect=True
)
def test_with_redis_an_accepted_signature_waits_in_memory_and_nothing_of_it_reaches_redis(
    redis_db, new_browser: NewBrowser, db: Session, rt: Runtime, connection: Connection, anonymous_client: TestClient
) -> None:
    """A copy of Redis taken while an entry waits (its own snapshots, every few minutes) would date the entry's
    arrival: the linkage suite named signers that way. So waiting entries stay in the accepting process."""
    petition = open_anonymous(db, rt)
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    before = {key: redis_db.dump(key) for key in redis_db.keys("*")}
    message, _signature = tokens[petition.id]
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202
    assert len(anonymous_queue(rt)) == 1 and count(db, petition) == 0
    after = {key: redis_db.dump(key) for key in redis_db.keys("*")}
    assert after == before  # not a key, not a counter, not a lifetime
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 409
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert anonymous.write_batch(sessions=sessions, rt=rt) == 1
    assert count(db, petition) == 1 and len(anonymous_queue(rt)) == 0
    assert not any(
        message in (redis_db.dump(key) or b"") or anonymous.nullifier(message).encode() in key
        for key in redis_db.keys("*")
    )


def test_an_error_on_the_submission_route_is_logged_with_the_hour_only(
    anonymous_client: TestClient, server_logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("a bug in the submission path")

    monkeypatch.setattr(anonymous, "submit", broken)
    server_logs.lines.clear()
    anonymous_client.cookies.clear()
    response = anonymous_client.post(
        "/api/v1/anonymous/signatures",
        json={"petition_id": 1, "message": anonymous.encode(b"m" * 32), "signature": anonymous.encode(b"s" * 128)},
    )
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    [line] = server_logs.lines
    entry = json.loads(line)
    assert entry["event"] == "unhandled error" and entry["error_type"] == "RuntimeError"
    assert entry["time"].endswith(":00:00.000+00:00"), "only the hour"
    assert "route" not in entry and "coarse_time" not in entry
