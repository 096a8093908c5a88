"""Linking a device (issue 19): the wallet secret goes from device A to device B of one account through the
server, sealed to a key only the two devices derive from the code A shows. Both devices are played in Python
(app/clients/linking.py, the protocol the browser and the command-line client speak), against the
server's routes; the server is also played as an attacker that swaps in a key of its own."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from app.anonymous import derive, linking
from app.anonymous.linking import link_sessions
from app.clients import linking as protocol
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e
from app.core.clock import FrozenClock
from app.core.errors import InvalidInput, NotFound
from app.core.runtime import Runtime
from app.models.accounts import User
from tests import factories
from tests.conftest import Browser, LogCapture, make_settings, redis_url, sign_in_as

NewBrowser = Callable[[], Browser]
PATH = "/api/v1/wallet/link"


@pytest.fixture(autouse=True)
def no_open_sessions(rt: Runtime) -> Iterator[None]:
    """Test apps are shared between tests and account ids repeat across rolled-back tests: start empty."""
    link_sessions(rt).clear()
    yield
    link_sessions(rt).clear()


def calls(browser: Browser) -> protocol.Call:
    """A device: Session.call's signature over the test client (cookies and CSRF token as a browser sends)."""

    def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        response = browser.api(method, path, json=body)
        return response.status_code, (response.json() if response.content else None)

    return call


@pytest.fixture
def devices(new_browser: NewBrowser, db: Session) -> tuple[Browser, Browser]:
    """Two devices of one worker: two browsers, two sessions, one account."""
    user = factories.worker(db)
    return sign_in_as(new_browser(), db, user), sign_in_as(new_browser(), db, user)


def offered(a: Browser) -> protocol.Offer:
    made = protocol.Offer()
    response = a.api("POST", PATH, made.body())
    assert response.status_code == 201 and response.json() == {"expires_in": 600}
    return made


def answered(b: Browser, code: str) -> protocol.Answer:
    session = b.api("GET", PATH).json()
    made = protocol.Answer(code=code, offer_key=b64d(session["offer_key"]))
    made.check_offer(b64d(session["offer_proof"]))
    assert b.api("POST", PATH + "/answer", made.body()).status_code == 200
    return made


def error(response) -> str:
    return str(response.json()["error"]["message"])


# The round trip --------------------------------------------------------------------------------------------


def test_a_and_b_link_through_the_api_and_b_opens_the_same_secret(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    secret = derive.new_secret()
    made = offered(a)
    first = b.api("GET", PATH).json()
    assert first["state"] == "offered" and first["offer_key"] == b64e(made.raw) and first["expires_in"] == 600
    assert set(first) == {"state", "offer_key", "offer_proof", "expires_in"}
    receiver = answered(b, protocol.display(made.code).lower())  # typed in small letters, with hyphens

    session = a.api("GET", PATH).json()
    assert session["state"] == "answered" and session["answer_key"] == b64e(receiver.raw)
    box = made.seal(secret, answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"]))
    assert a.api("POST", PATH + "/sealed", {"sealed": b64e(box)}).status_code == 200

    session = b.api("GET", PATH).json()
    assert session["state"] == "sealed"
    assert receiver.open(b64d(session["sealed"]), expected_check=derive.check(secret)) == secret
    assert b.api("POST", PATH + "/done").status_code == 204
    # Gone for both devices, with every key in it: A's next look finds only the marker that B collected it, once
    # (before: a 404, which A could not tell from a session that expired with the box uncollected).
    done = a.api("GET", PATH)
    assert done.status_code == 200 and done.json() == {"state": "done", "expires_in": done.json()["expires_in"]}
    assert 0 < done.json()["expires_in"] <= 120
    assert a.api("GET", PATH).status_code == 404 and b.api("GET", PATH).status_code == 404


def test_the_protocol_functions_link_a_device_as_the_client_will(devices: tuple[Browser, Browser]) -> None:
    """offer() and answer() as the command-line client calls them, A's waiting run from B's."""
    a, b = devices
    secret = derive.new_secret()

    class Paused(Exception):
        pass

    def a_waits(_seconds: float) -> None:
        raise Paused  # A's poll: handed back to the test, which then lets B go on

    code, finish = protocol.offer(calls(a), sleep=a_waits)
    assert len(code) == 14 and code.count("-") == 2

    def b_waits(_seconds: float) -> None:
        with pytest.raises(Paused):
            finish(secret)  # A reads the answer and seals, if there is one yet

    assert protocol.answer(calls(b), code, derive.check(secret), sleep=b_waits) == secret
    finish(secret)  # A sees the session closed after sealing: linked
    assert a.api("GET", PATH).status_code == 404


def test_a_device_b_reads_the_accounts_wallet_check_itself(
    devices: tuple[Browser, Browser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an expected check given, B reads GET /api/v1/wallet's wallet_check, and refuses without one."""
    a, b = devices
    secret = derive.new_secret()
    base = calls(b)

    def with_check(check: str | None) -> protocol.Call:
        def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
            status, answer = base(method, path, body)
            if path == "/api/v1/wallet":
                answer = {**answer, "wallet_check": check}
            return status, answer

        return call

    offered(a)
    with pytest.raises(protocol.LinkError, match="No device has registered a wallet"):
        protocol.answer(with_check(None), protocol.new_code(), sleep=lambda _s: None)
    made = offered(a)

    def a_seals(_seconds: float) -> None:
        session = a.api("GET", PATH).json()
        if session["state"] == "answered":
            box = made.seal(secret, answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"]))
            a.api("POST", PATH + "/sealed", {"sealed": b64e(box)})

    got = protocol.answer(with_check(b64e(derive.check(secret))), made.code, sleep=a_seals)
    assert got == secret


def test_b_keeps_no_secret_that_is_not_the_accounts_wallet(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    made = offered(a)
    receiver = answered(b, made.code)
    session = a.api("GET", PATH).json()
    other = derive.new_secret()  # A holds a wallet, but not the one the account registered
    box = made.seal(other, answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"]))
    a.api("POST", PATH + "/sealed", {"sealed": b64e(box)})
    sealed = b64d(b.api("GET", PATH).json()["sealed"])
    with pytest.raises(protocol.LinkError, match="not this account's"):
        receiver.open(sealed, expected_check=derive.check(derive.new_secret()))
    # A box changed on the way does not open either.
    with pytest.raises(protocol.LinkError, match="cannot be opened"):
        receiver.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), expected_check=derive.check(other))


# Wrong codes, expiry, single use ---------------------------------------------------------------------------


def test_a_wrong_code_counts_and_the_fifth_closes_the_session(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    made = offered(a)
    session = b.api("GET", PATH).json()
    for left in (4, 3, 2, 1):
        wrong = protocol.Answer(code=protocol.new_code(), offer_key=b64d(session["offer_key"]))
        response = b.api("POST", PATH + "/answer", wrong.body())
        assert response.status_code == 422
        assert error(response) == (
            f"That is not the code your other device shows. Check it and type it again. Attempts left: {left}."
        )
    # The right code still works up to the fifth wrong one...
    assert b.api("GET", PATH).json()["state"] == "offered"
    wrong = protocol.Answer(code=protocol.new_code(), offer_key=b64d(session["offer_key"]))
    response = b.api("POST", PATH + "/answer", wrong.body())
    assert response.status_code == 409
    assert error(response) == "Too many wrong codes: start again on your other device."
    # ...which closes it: the right code now finds nothing, and A is told its code stopped working.
    right = protocol.Answer(code=made.code, offer_key=made.raw)
    response = b.api("POST", PATH + "/answer", right.body())
    assert response.status_code == 404 and "Show a new code on the device that has your wallet" in error(response)
    assert a.api("GET", PATH).status_code == 404


def test_a_code_expires_ten_minutes_after_it_is_shown(devices: tuple[Browser, Browser], clock: FrozenClock) -> None:
    a, b = devices
    made = offered(a)
    clock.advance(timedelta(minutes=9, seconds=59))
    assert b.api("GET", PATH).json()["expires_in"] == 1
    clock.advance(timedelta(seconds=1))
    response = b.api("GET", PATH)
    assert response.status_code == 404
    assert error(response) == (
        "No device is showing a linking code for your account right now: the code expired "
        "(codes last 10 minutes), was used, or was cancelled. Show a new code on the device "
        "that has your wallet."
    )
    right = protocol.Answer(code=made.code, offer_key=made.raw)
    assert b.api("POST", PATH + "/answer", right.body()).status_code == 404
    assert a.api("POST", PATH + "/sealed", {"sealed": b64e(bytes(44))}).status_code == 404
    assert b.api("POST", PATH + "/done").status_code == 404


def test_a_half_finished_session_expires_and_b_is_told_to_start_again(
    devices: tuple[Browser, Browser], clock: FrozenClock
) -> None:
    """B answered, then A's page was closed without cancelling (it never seals): B waits, then is told to start
    again once the session expires."""
    a, b = devices
    made = offered(a)
    waited: list[float] = []

    def time_passes(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(timedelta(minutes=4))

    with pytest.raises(protocol.LinkError) as ended:
        protocol.answer(calls(b), made.code, derive.check(derive.new_secret()), sleep=time_passes)
    assert str(ended.value) == protocol.ENDED and len(waited) == 3  # 12 minutes: past the 10
    assert a.api("GET", PATH).status_code == 404


def test_when_a_cancels_b_stops_waiting_at_once(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    made = offered(a)

    def a_cancels(_seconds: float) -> None:
        assert a.api("DELETE", PATH).status_code == 204

    with pytest.raises(protocol.LinkError, match="the other device cancelled or closed its page"):
        protocol.answer(calls(b), made.code, derive.check(derive.new_secret()), sleep=a_cancels)


def test_a_code_works_once(devices: tuple[Browser, Browser], new_browser: NewBrowser, db: Session) -> None:
    a, b = devices
    made = offered(a)
    user = db.get_one(User, a.api("GET", "/api/v1/me").json()["id"])
    answered(b, made.code)
    # A third device of the account with the same code, and B again: both refused.
    for device in (sign_in_as(new_browser(), db, user), b):
        again = protocol.Answer(code=made.code, offer_key=made.raw)
        response = device.api("POST", PATH + "/answer", again.body())
        assert response.status_code == 409
        assert error(response) == (
            "This code was already used by another device. Show a new code on the device that has your wallet."
        )
    session = a.api("GET", PATH).json()
    box = made.seal(
        derive.new_secret(), answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"])
    )
    assert a.api("POST", PATH + "/sealed", {"sealed": b64e(box)}).status_code == 200
    response = a.api("POST", PATH + "/sealed", {"sealed": b64e(box)})
    assert response.status_code == 409 and "already used" in error(response)
    assert b.api("POST", PATH + "/done").status_code == 204
    assert b.api("POST", PATH + "/done").status_code == 404


def test_nothing_is_sealed_before_a_device_answers_and_a_new_code_replaces_the_old(
    devices: tuple[Browser, Browser],
) -> None:
    a, b = devices
    old = offered(a)
    response = a.api("POST", PATH + "/sealed", {"sealed": b64e(bytes(44))})
    assert response.status_code == 409
    assert error(response) == "No new device has answered this code yet, so there is nothing to seal the wallet to."
    new = offered(a)
    assert b.api("GET", PATH).json()["offer_key"] == b64e(new.raw)
    stale = protocol.Answer(code=old.code, offer_key=old.raw)
    assert b.api("POST", PATH + "/answer", stale.body()).status_code == 422  # the old code no longer opens it
    assert a.api("DELETE", PATH).status_code == 204
    assert b.api("GET", PATH).status_code == 404
    assert a.api("DELETE", PATH).status_code == 204  # cancelling twice is still cancelled


def test_sessions_are_per_account(devices: tuple[Browser, Browser], new_browser: NewBrowser, db: Session) -> None:
    a, _b = devices
    made = offered(a)
    stranger = sign_in_as(new_browser(), db, factories.worker(db))
    assert stranger.api("GET", PATH).status_code == 404
    response = stranger.api("POST", PATH + "/answer", protocol.Answer(code=made.code, offer_key=made.raw).body())
    assert response.status_code == 404
    assert a.api("GET", PATH).json()["state"] == "offered"


# A server that lies --------------------------------------------------------------------------------------


def test_a_server_that_swaps_in_its_own_key_for_as_is_caught_by_b(devices: tuple[Browser, Browser]) -> None:
    """The server hands B a key of its own instead of A's, to have B answer (and later trust) it. Without the
    code it cannot make the offer proof for its key: B refuses, and sends nothing it could use."""
    a, b = devices
    made = offered(a)
    attacker = protocol.Offer()  # the server's own key, proved with a code it made up
    forged = attacker.body()
    base = calls(b)
    posted: list[str] = []

    def lying(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        posted.append(f"{method} {path}")
        if method == "POST" and path == PATH + "/answer":
            return 200, {"expires_in": 600}  # it takes any answer: it would open what A seals to its key
        status, answer = base(method, path, body)
        if method == "GET" and path == PATH and status == 200:
            answer = {**answer, "offer_key": forged["offer_key"], "offer_proof": forged["offer_proof"]}
        return status, answer

    with pytest.raises(protocol.LinkError, match="your other device's key was changed on the way"):
        protocol.answer(lying, made.code, derive.check(derive.new_secret()), sleep=lambda _s: None)
    # B checked the offer's proof before answering: no code proof or key of B's went out for the server's key
    # (before: B posted its answer first, then checked).
    assert f"POST {PATH}/answer" not in posted and f"POST {PATH}/done" not in posted
    assert a.api("GET", PATH).json()["state"] == "offered"  # a typo fails the same way, so nothing is cancelled
    # Keeping A's own proof beside the server's key fails the same way.
    receiver = protocol.Answer(code=made.code, offer_key=attacker.raw)
    with pytest.raises(protocol.LinkError):
        receiver.check_offer(b64d(made.body()["offer_proof"]))


def test_a_server_that_swaps_in_its_own_key_for_bs_is_caught_by_a(devices: tuple[Browser, Browser]) -> None:
    """The server answers A's code with a key of its own, to have A seal the secret to it: A checks the answer
    proof, which needs the code, and seals nothing."""
    a, b = devices
    secret = derive.new_secret()
    base = calls(a)
    attacker = protocol.Answer(code=protocol.new_code(), offer_key=b"")
    sent: list[str] = []

    def lying(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        status, answer = base(method, path, body)
        if method == "GET" and path == PATH and status == 200 and answer["state"] == "answered":
            made_up = protocol.Answer(code=attacker.code, offer_key=b64d(answer["offer_key"]), private=attacker.private)
            answer = {
                **answer,
                "answer_key": made_up.body()["answer_key"],
                "answer_proof": made_up.body()["answer_proof"],
            }
        sent.append(f"{method} {path}")
        return status, answer

    class Paused(Exception):
        pass

    def a_waits(_seconds: float) -> None:
        raise Paused

    code, finish = protocol.offer(lying, sleep=a_waits)
    answered(b, code)  # the real B answers; the server shows A its own key instead
    with pytest.raises(protocol.LinkError, match="its key was changed on the way"):
        finish(secret)
    assert f"POST {PATH}/sealed" not in sent
    assert b.api("GET", PATH).status_code == 404  # A cancelled: B is told to start again
    # Directly: the real B's proof does not cover the server's key.
    made = protocol.Offer()
    other = protocol.Answer(code=made.code, offer_key=made.raw)
    with pytest.raises(protocol.LinkError):
        made.seal(secret, answer_key=attacker.raw, answer_proof=b64d(other.body()["answer_proof"]))


# Refusals in plain words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"offer_key": b64e(b"\x04" + bytes(64))}, "offer_key", "Not an uncompressed P-256 public key (65 bytes)."),
        ({"offer_key": b64e(b"\x02" + bytes(64))}, "offer_key", "Not an uncompressed P-256 public key (65 bytes)."),
        ({"offer_proof": b64e(bytes(33))}, "offer_proof", "Must be 32 bytes."),
        ({"code_proof": "!" * 43}, "code_proof", None),
    ],
)
def test_a_malformed_offer_is_refused_in_plain_words(
    devices: tuple[Browser, Browser], body: dict[str, str], field: str, words: str | None
) -> None:
    a, _b = devices
    response = a.api("POST", PATH, {**protocol.Offer().body(), **body})
    assert response.status_code == 422
    problem = response.json()["error"]
    assert problem["message"] and field in json.dumps(problem)
    if words:
        assert problem["fields"][field] == words
    assert a.api("GET", PATH).status_code == 404  # nothing opened


def test_malformed_answers_and_boxes_are_refused_in_plain_words(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    made = offered(a)
    good = protocol.Answer(code=made.code, offer_key=made.raw).body()
    response = b.api("POST", PATH + "/answer", {**good, "answer_key": b64e(bytes(65))})
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["answer_key"] == "Not an uncompressed P-256 public key (65 bytes)."
    assert b.api("POST", PATH + "/answer", {**good, "extra": "x"}).status_code == 422
    assert b.api("GET", PATH).json()["state"] == "offered"  # a malformed answer is no attempt
    answered(b, made.code)
    response = a.api("POST", PATH + "/sealed", {"sealed": "!" * 59})
    assert response.status_code == 422
    response = a.api("POST", PATH + "/sealed", {"sealed": b64e(bytes(45))})
    assert response.status_code == 422 and response.json()["error"]["fields"]["sealed"] == "Must be 44 bytes."


def test_linking_needs_a_signed_in_worker_and_the_csrf_token(
    devices: tuple[Browser, Browser], new_browser: NewBrowser
) -> None:
    a, _b = devices
    stranger = new_browser()
    assert stranger.api("GET", PATH).status_code == 401
    assert stranger.api("POST", PATH, protocol.Offer().body()).status_code == 401
    response = a.api("POST", PATH, protocol.Offer().body(), csrf=False)
    assert response.status_code == 403
    assert a.api("DELETE", PATH, csrf=False).status_code == 403


def test_opening_and_answering_are_rate_limited_per_account(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    for _ in range(3):  # 3 sessions x 4 wrong codes: 12 answers, the 11th over the limit of 10 a minute
        made = offered(a)
        for _attempt in range(4):
            wrong = protocol.Answer(code=protocol.new_code(), offer_key=made.raw)
            response = b.api("POST", PATH + "/answer", wrong.body())
            if response.status_code == 429:
                break
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert error(response) == "Too many attempts. Please wait a little and try again."
    assert int(response.headers["retry-after"]) >= 1
    for _ in range(7):  # 10 sessions an hour
        offered(a)
    response = a.api("POST", PATH, protocol.Offer().body())
    assert response.status_code == 429 and "Retry-After" in response.headers


# What the server keeps ---------------------------------------------------------------------------------------


def table_contents(db: Session) -> str:
    db.expire_all()
    return "\n".join(
        repr(tuple(row))
        for table in inspect(db.get_bind()).get_table_names()
        for row in db.execute(text(f'SELECT * FROM "{table}"'))
    )


def test_nothing_of_a_session_reaches_a_table_or_a_log_line(
    devices: tuple[Browser, Browser], db: Session, server_logs: LogCapture, rt: Runtime
) -> None:
    a, b = devices
    secret = derive.new_secret()
    before = table_contents(db)
    made = offered(a)
    receiver = answered(b, made.code)
    session = a.api("GET", PATH).json()
    box = made.seal(secret, answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"]))
    a.api("POST", PATH + "/sealed", {"sealed": b64e(box)})
    assert receiver.open(b64d(b.api("GET", PATH).json()["sealed"]), expected_check=derive.check(secret)) == secret
    b.api("POST", PATH + "/done")
    # The sessions table, the audit log, the outbox: nothing new, nothing changed by linking.
    assert table_contents(db) == before
    values = [
        made.code,
        protocol.display(made.code),
        b64e(made.raw),
        b64e(receiver.raw),
        b64e(box),
        b64e(secret),
        made.body()["offer_proof"],
        made.body()["code_proof"],
        receiver.body()["answer_proof"],
    ]
    logged = server_logs.text
    assert not [value for value in values if value in logged]
    # The request lines of these routes wait for the hour to be over, counted by route and status.
    assert "/api/v1/wallet/link" not in logged
    # All that stays is the marker for A's next look, with no key, proof or box in it; A's look takes it away.
    account = a.api("GET", "/api/v1/me").json()["id"]
    marker = link_sessions(rt).get(account, now=rt.clock.now())
    assert marker.state is linking.State.done
    assert {name for name, value in dataclasses.asdict(marker).items() if value} == {"state", "expires_at"}
    assert len(link_sessions(rt)) == 0


REDIS_URL = redis_url(11)


@pytest.fixture
def redis_db():
    import redis

    from tests.conftest import missing

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as problem:  # noqa: BLE001 - any failure to reach Redis
        missing(f"Redis is not running at {REDIS_URL} ({problem})")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str):
    return make_settings(database_url, **getattr(request, "param", {}))


@pytest.mark.parametrize("settings", [{"redis_url": REDIS_URL}], indirect=True)
def test_with_redis_the_session_is_public_material_under_a_keyed_hash_and_goes_with_done(
    redis_db, devices: tuple[Browser, Browser], rt: Runtime
) -> None:
    """Several processes share a deployment's sessions through Redis: what Redis holds while one is open is public
    keys, proofs and a box it cannot open, under a keyed hash of the account; never the code or the secret; and
    nothing once the new device has the secret."""
    a, b = devices
    secret = derive.new_secret()
    made = offered(a)
    answered(b, made.code)
    session = a.api("GET", PATH).json()
    box = made.seal(secret, answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"]))
    a.api("POST", PATH + "/sealed", {"sealed": b64e(box)})
    stored = {key: redis_db.dump(key) or b"" for key in redis_db.keys("*")}
    sessions = [key for key in stored if key.startswith(b"undersigned:wallet-link:")]
    assert len(sessions) == 1, stored
    assert all(
        b"/wallet-link-open/" in key or b"/wallet-link-answer/" in key for key in stored if key not in sessions
    ), stored
    assert re.fullmatch(rb"undersigned:wallet-link:[0-9a-f]{64}", sessions[0]), sessions[0]  # a keyed hash
    values = [
        made.code.encode(),
        protocol.display(made.code).encode(),
        secret,
        b64e(secret).encode(),
        secret.hex().encode(),
    ]
    assert not [value for value in values for key, dump in stored.items() if value in key or value in dump]
    assert b.api("POST", PATH + "/done").status_code == 204
    # Only the "done" marker stays, with no key, proof or box, until A's next look; its key's lifetime ends at a
    # whole minute, so it dates the session no finer than that.
    left = [
        key for key in redis_db.keys("*") if key.startswith(b"undersigned:wallet-link:") and not key.endswith(b":lock")
    ]
    assert left == sessions
    marker = json.loads(redis_db.get(sessions[0]))
    assert {name for name, value in marker.items() if value} == {"state", "expires_at"} and marker["state"] == "done"
    assert redis_db.execute_command("EXPIRETIME", sessions[0]) % 60 == 0
    assert a.api("GET", PATH).json()["state"] == "done"
    assert not [key for key in redis_db.keys("*") if key.startswith(b"undersigned:wallet-link:")]


@pytest.mark.parametrize("settings", [{"redis_url": REDIS_URL}], indirect=True)
def test_with_redis_every_process_sees_the_same_session(redis_db, rt: Runtime) -> None:
    """Two server processes (two sets of sessions over one Redis): A's code opened on one is answered on the
    other, and a wrong code counted on one is counted on the other (before: each process held its own, so the
    new device was told no code was open whenever its request reached another process)."""
    other_process = linking.LinkSessions(redis_url=REDIS_URL, keyring=rt.keyring)
    now = rt.clock.now()
    link_sessions(rt).open(7, offer_key=b"\x04" + bytes(64), offer_proof=bytes(32), code_proof=b"c" * 32, now=now)
    assert other_process.get(7, now=now).state is linking.State.offered
    with pytest.raises(InvalidInput):
        other_process.answer(7, code_proof=b"x" * 32, answer_key=b"\x04" + bytes(64), answer_proof=bytes(32), now=now)
    assert link_sessions(rt).get(7, now=now).wrong_codes == 1
    answered_there = other_process.answer(
        7, code_proof=b"c" * 32, answer_key=b"\x04" + bytes(64), answer_proof=bytes(32), now=now
    )
    assert answered_there.state is linking.State.answered
    assert link_sessions(rt).seal(7, sealed=bytes(44), now=now).state is linking.State.sealed
    with pytest.raises(NotFound):
        other_process.get(7, now=now + linking.LIFETIME)


# The page ----------------------------------------------------------------------------------------------------


def test_the_page_offers_both_halves_and_says_what_to_do_without_javascript(
    devices: tuple[Browser, Browser], new_browser: NewBrowser
) -> None:
    a, _b = devices
    page = a.get("/wallet/link")
    assert page.status_code == 200
    html = page.text
    for words in (
        "Show a code for your new device",
        "Type the code from your other device",
        "<noscript>",
        "A recovery code needs JavaScript too",
        "giving up signing it anonymously",
        'src="/static/wallet-link.js" defer',
        'role="alert"',
        'href="/wallet"',
        "Do not send the code or the QR code by mail or chat",
        "It is 60 random bits",
    ):
        assert words in html, words
    assert 'data-next="/petitions/7"' in a.get("/wallet/link?next=/petitions/7").text
    assert 'data-next="/wallet"' in a.get("/wallet/link?next=https://elsewhere.example/").text
    signed_out = new_browser().get("/wallet/link")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/signin?")


# Each device's own deadline, and "Linked." only when the new device collected ------------------------------


class DeviceClock:
    """A device's monotonic clock that moves only when the device sleeps: minutes pass in no time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 1.0)

    def __call__(self) -> float:
        return self.now


def stalling_server(
    code_holder: dict[str, str], *, answer_at: float | None, clock: DeviceClock, expires_in: int = 10**9
) -> protocol.Call:
    """A modified server (the reviewer's link_mitm_stall.py): it reports a session that never expires and keeps
    it open, and once it has guessed the code offline (here: at `answer_at` seconds) answers as B with a key of
    its own, to have A seal the wallet to it."""
    state: dict[str, Any] = {}

    def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        clock.calls.append(f"{method} {path}")
        if method == "POST" and path == PATH:
            state["offer"] = body
            return 201, {"expires_in": expires_in}
        if method == "GET" and path == PATH:
            session = {"state": "offered", **state["offer"], "expires_in": expires_in}
            session.pop("code_proof")
            if answer_at is not None and clock() >= answer_at:
                evil = protocol.Answer(code=code_holder["code"], offer_key=b64d(state["offer"]["offer_key"])).body()
                session.update(state="answered", answer_key=evil["answer_key"], answer_proof=evil["answer_proof"])
            return 200, session
        if method == "POST" and path == PATH + "/answer":
            return 200, {"expires_in": expires_in}
        if method == "DELETE":
            return 204, None
        return 200, {"expires_in": expires_in}

    return call


def test_device_a_gives_up_after_ten_minutes_by_its_own_clock_whatever_the_server_reports() -> None:
    """Before: A trusted expires_in and the Python half had no deadline at all, so a server could stall the
    session for as long as it needed to guess the 60-bit code offline, then answer as B."""
    clock = DeviceClock()
    holder: dict[str, str] = {}
    server = stalling_server(holder, answer_at=601.0, clock=clock)
    code, finish = protocol.offer(server, sleep=clock.sleep, clock=clock)
    holder["code"] = code
    with pytest.raises(protocol.LinkError) as gave_up:
        finish(derive.new_secret())
    assert str(gave_up.value) == protocol.EXPIRED
    assert 600 <= clock() < 605
    assert f"POST {PATH}/sealed" not in clock.calls and clock.calls[-1] == f"DELETE {PATH}"
    # A smaller expires_in is a shorter deadline: A never waits longer than the server says either.
    clock = DeviceClock()
    _code, finish = protocol.offer(
        stalling_server(holder, answer_at=None, clock=clock, expires_in=120), sleep=clock.sleep, clock=clock
    )
    with pytest.raises(protocol.LinkError):
        finish(derive.new_secret())
    assert 120 <= clock() < 125


def test_device_b_gives_up_ten_minutes_after_answering_by_its_own_clock(devices: tuple[Browser, Browser]) -> None:
    a, b = devices
    made = offered(a)
    clock = DeviceClock()
    base = calls(b)

    def stalling(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        status, answer = base(method, path, body)
        if isinstance(answer, dict) and "expires_in" in answer:
            answer = {**answer, "expires_in": 10**9}  # the server says the session never ends, and never seals
        return status, answer

    with pytest.raises(protocol.LinkError) as gave_up:
        protocol.answer(stalling, made.code, derive.check(derive.new_secret()), sleep=clock.sleep, clock=clock)
    assert str(gave_up.value) == protocol.WAITED and 600 <= clock() < 605


def test_a_says_linked_only_when_b_collected_and_otherwise_to_show_a_new_code(
    devices: tuple[Browser, Browser], clock: FrozenClock
) -> None:
    """The reviewer's false_linked.py against the real server: B answered, A sealed, B never collected. Before,
    A read the 404 of the expired session as success ("Linked.")."""
    a, b = devices
    device = DeviceClock()

    def time_passes(seconds: float) -> None:
        device.sleep(seconds)
        clock.advance(timedelta(seconds=max(seconds, 1.0)))

    code, finish = protocol.offer(calls(a), sleep=time_passes, clock=device)
    answered(b, code)  # and then B's page is closed: nobody collects the box
    with pytest.raises(protocol.LinkError) as told:
        finish(derive.new_secret())
    assert str(told.value) == protocol.NOT_COLLECTED
    assert "did not collect the wallet" in protocol.NOT_COLLECTED and "show a new code" in protocol.NOT_COLLECTED
    # With B collecting, A's finish returns (linked) on the server's "done", read once.
    secret = derive.new_secret()
    receiver: list[protocol.Answer] = []

    def a_waits_while_b_collects(_seconds: float) -> None:
        session = b.api("GET", PATH).json()
        if session["state"] == "sealed":
            assert receiver[0].open(b64d(session["sealed"]), expected_check=derive.check(secret)) == secret
            assert b.api("POST", PATH + "/done").status_code == 204

    code, finish = protocol.offer(calls(a), sleep=a_waits_while_b_collects)
    receiver.append(answered(b, code))
    finish(secret)  # returns: B collected
    assert a.api("GET", PATH).status_code == 404  # the marker was shown once


def test_a_done_before_anything_was_sealed_is_refused(devices: tuple[Browser, Browser]) -> None:
    """A stray /done (a stolen cookie, a confused device) cannot make A say "Linked." before a box exists."""
    a, b = devices
    made = offered(a)
    response = b.api("POST", PATH + "/done")
    assert response.status_code == 409
    assert error(response) == "Your other device has not sent the wallet yet, so there is nothing to collect."
    answered(b, made.code)
    assert b.api("POST", PATH + "/done").status_code == 409
    assert a.api("GET", PATH).json()["state"] == "answered"


def test_a_mistyped_code_is_caught_by_b_before_it_answers_and_costs_no_attempt(
    devices: tuple[Browser, Browser], rt: Runtime, db: Session
) -> None:
    a, b = devices
    made = offered(a)
    wrong = protocol.new_code()
    with pytest.raises(protocol.LinkError) as refused:
        protocol.answer(calls(b), wrong, derive.check(derive.new_secret()), sleep=lambda _s: None)
    assert str(refused.value).startswith("That is not the code your other device shows: check it")
    account = a.api("GET", "/api/v1/me").json()["id"]
    session = link_sessions(rt).get(account, now=rt.clock.now())
    assert session.state is linking.State.offered and session.wrong_codes == 0
    assert made.code != wrong


# Where sessions are kept: every expired one purged, deadlines to the minute -------------------------------


def test_every_expired_session_is_purged_on_any_call_not_only_the_callers(rt: Runtime) -> None:
    """Before: an expired session stayed in memory until its own account asked again."""
    sessions = linking.LinkSessions()
    now = rt.clock.now()
    for account in (7, 8):
        sessions.open(account, offer_key=b"\x04" + bytes(64), offer_proof=bytes(32), code_proof=bytes(32), now=now)
    assert len(sessions) == 2
    with pytest.raises(NotFound):
        sessions.get(9, now=now + linking.LIFETIME)
    assert len(sessions) == 0


@pytest.mark.parametrize("seconds", [0, 1, 30, 59])
def test_a_deadline_is_kept_to_the_minute_and_never_past_ten_minutes(seconds: int, rt: Runtime) -> None:
    sessions = linking.LinkSessions()
    now = rt.clock.now().replace(second=seconds, microsecond=123456 if seconds else 0)
    opened = sessions.open(7, offer_key=b"\x04" + bytes(64), offer_proof=bytes(32), code_proof=bytes(32), now=now)
    assert opened.expires_at.second == 0 and opened.expires_at.microsecond == 0
    assert linking.LIFETIME - timedelta(minutes=1) < opened.expires_at - now <= linking.LIFETIME
    assert opened.expires_in(now) <= 600


# Redis out of reach: 503 in plain words ----------------------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


def test_redis_out_of_reach_is_a_503_in_plain_words_never_a_500(
    devices: tuple[Browser, Browser], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = devices
    made = protocol.Offer()
    monkeypatch.setattr(
        link_sessions(rt), "_store", linking.RedisStore(f"redis://127.0.0.1:{closed_port()}/11", rt.keyring)
    )
    answer = protocol.Answer(code=made.code, offer_key=made.raw)
    for device, method, path, body in (
        (a, "POST", PATH, made.body()),
        (b, "GET", PATH, None),
        (b, "POST", PATH + "/answer", answer.body()),
        (a, "POST", PATH + "/sealed", {"sealed": b64e(bytes(44))}),
        (b, "POST", PATH + "/done", None),
        (a, "DELETE", PATH, None),
    ):
        response = device.api(method, path, json=body)
        assert response.status_code == 503, (method, path, response.text)
        assert error(response) == (
            "Linking devices is unavailable for a moment: the server cannot reach the store "
            "where it keeps linking codes. Nothing was sent or kept. Try again in a minute."
        )
        assert response.headers["retry-after"] == "60"


def test_a_held_lock_is_a_503_too(
    devices: tuple[Browser, Browser], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis.exceptions

    a, _b = devices

    class Locked(linking.MemoryStore):
        @contextmanager
        def locked(self, account_id: int) -> Iterator[None]:
            raise redis.exceptions.LockError("Unable to acquire lock within the time specified")
            yield

    monkeypatch.setattr(link_sessions(rt), "_store", Locked())
    response = a.api("GET", PATH)
    assert response.status_code == 503 and "Try again in a minute" in error(response)
