"""The server side of one wallet on every device (issue 19): the server keeps only that an account's wallet
exists (its check value, never its secret) and the blind replies it gave, so any device holding the secret
rebuilds the requests it answered and finalizes them. Two devices racing to start a wallet, or to collect the
same credentials, get one clear winner and a plain 409, never a 500 or a half-written row."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx2
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.accounts import sessions as account_sessions
from app.anonymous import derive
from app.anonymous import service as anonymous
from app.core import blindrsa
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e
from app.core.runtime import Runtime
from app.main import create_app
from app.models.anonymous import DiscussionIssuance, IssuingKey, TokenIssuance, WalletCheck
from tests import factories, live_server
from tests.conftest import Browser, count_rows, make_settings, sign_in_as
from tests.server_process import scratch_database

NewBrowser = Callable[[], Browser]


def open_anonymous(db: Session, rt: Runtime, title: str = "Stop recording our screens"):
    return factories.open_petition(db, rt, title=title, allow_anonymous=True)


def derived_requests(state: dict, secret: bytes) -> tuple[list[dict[str, object]], dict]:
    """What any device of the wallet asks for: the requests derived from the secret, one per credential due."""
    requests, pending = [], {}
    for key in state["due"]:
        public = blindrsa.PublicKey.from_spki(b64d(key["spki"]))
        credential = derive.credential(
            secret, purpose=key["purpose"], petition_id=key["petition_id"], key_id=key["key_id"], public=public
        )
        pending[(key["petition_id"], key["purpose"])] = (public, credential)
        requests.append(
            {
                "petition_id": key["petition_id"],
                "purpose": key["purpose"],
                "blinded_message": b64e(credential.blinded_msg),
            }
        )
    return requests, pending


def finalize_kept(state: dict, secret: bytes) -> dict[tuple[int, str], bytes]:
    """A device finalizing the kept replies of GET /api/v1/wallet from the secret alone."""
    found = {}
    for item in state["issued"]:
        public = blindrsa.PublicKey.from_spki(b64d(item["spki"]))
        assert public.key_id() == item["key_id"]
        credential = derive.credential(
            secret, purpose=item["purpose"], petition_id=item["petition_id"], key_id=item["key_id"], public=public
        )
        found[(item["petition_id"], item["purpose"])] = credential.finalize(public, b64d(item["blind_signature"]))
    return found


def start_wallet(browser: Browser, check: bytes):
    return browser.api("POST", "/api/v1/wallet/check", {"check": b64e(check)})


# The check value ----------------------------------------------------------------------------------------------


def test_a_wallet_is_started_once_and_a_second_one_is_refused_in_plain_words(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    member = factories.worker(db)
    phone = sign_in_as(new_browser(), db, member)
    laptop = sign_in_as(new_browser(), db, member)
    assert phone.get("/api/v1/wallet").json()["wallet_check"] is None
    secret = derive.new_secret()
    started = start_wallet(phone, derive.check(secret))
    assert started.status_code == 201, started.text
    assert started.json() == {"wallet_check": b64e(derive.check(secret))}
    assert laptop.get("/api/v1/wallet").json()["wallet_check"] == b64e(derive.check(secret))
    # The same wallet again (a retry, or another device that holds the secret): nothing changes.
    again = start_wallet(laptop, derive.check(secret))
    assert again.status_code == 200 and again.json() == started.json()
    # Another wallet for the same account: refused, and the first stays.
    other = start_wallet(laptop, derive.check(derive.new_secret()))
    assert other.status_code == 409
    assert other.json()["error"]["message"] == (
        "This account's wallet was started on another device. Link this device to it, or enter its recovery code: "
        "Your wallet (/wallet)."
    )
    db.expire_all()
    (row,) = db.scalars(select(WalletCheck).where(WalletCheck.account_id == member.id))
    assert bytes(row.check) == derive.check(secret)
    assert row.started_on == rt.clock.now().date()  # the day, as for issuances: no time of day
    # Another account's wallet is its own business.
    colleague = sign_in_as(new_browser(), db, factories.worker(db))
    assert colleague.get("/api/v1/wallet").json()["wallet_check"] is None
    assert start_wallet(colleague, derive.check(derive.new_secret())).status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ({"check": "not base64!"}, "check"),
        ({"check": b64e(bytes(15))}, "check"),
        ({"check": b64e(bytes(17))}, "check"),
        ({"check": "%%%%"}, "check"),
        ({}, "check"),
        ({"check": b64e(bytes(16)), "secret": "x"}, "secret"),
    ],
)
def test_a_check_that_is_not_one_is_refused_and_nothing_is_written(
    body: dict,
    field: str,
    browser: Browser,
    db: Session,
) -> None:
    sign_in_as(browser, db, factories.worker(db))
    refused = browser.api("POST", "/api/v1/wallet/check", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["message"]
    assert count_rows(db, "wallet_checks") == 0


def test_starting_a_wallet_needs_a_signed_in_member_and_the_csrf_token(browser: Browser, db: Session) -> None:
    assert browser.api("POST", "/api/v1/wallet/check", {"check": b64e(bytes(16))}).status_code == 401
    sign_in_as(browser, db, factories.worker(db))
    forged = browser.api("POST", "/api/v1/wallet/check", {"check": b64e(bytes(16))}, csrf=False)
    assert forged.status_code == 403
    assert count_rows(db, "wallet_checks") == 0


@pytest.mark.parametrize("settings", [{"rate_limit_sign": "3/minute"}], indirect=True)
def test_starting_a_wallet_is_rate_limited_per_account_on_its_own_action(browser: Browser, db: Session) -> None:
    sign_in_as(browser, db, factories.worker(db))
    check = b64e(derive.check(derive.new_secret()))
    statuses = [browser.api("POST", "/api/v1/wallet/check", {"check": check}).status_code for _ in range(4)]
    assert statuses == [201, 200, 200, 429]
    # Its own action: collecting credentials is not held back by it.
    assert browser.api("POST", "/api/v1/wallet/tokens", {"tokens": []}).status_code != 429


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str):
    return make_settings(database_url, **getattr(request, "param", {}))


def test_deleting_an_account_deletes_its_wallet_check(browser: Browser, db: Session) -> None:
    member = factories.worker(db)
    sign_in_as(browser, db, member)
    assert start_wallet(browser, derive.check(derive.new_secret())).status_code == 201
    db.execute(text("DELETE FROM user_sessions WHERE user_id = :id"), {"id": member.id})
    db.execute(text("DELETE FROM users WHERE id = :id"), {"id": member.id})
    db.commit()
    assert count_rows(db, "wallet_checks") == 0


# What a device reads -------------------------------------------------------------------------------------------


def test_any_device_of_the_wallet_finalizes_the_kept_replies_with_the_key_they_are_under(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = factories.worker(db)
    secret = derive.new_secret()
    phone = sign_in_as(new_browser(), db, member)
    assert start_wallet(phone, derive.check(secret)).status_code == 201
    requests, pending = derived_requests(phone.get("/api/v1/wallet").json(), secret)
    collected = phone.api("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    assert collected.status_code == 200, collected.text
    on_phone = {}
    for item in collected.json()["tokens"]:
        public, credential = pending[(item["petition_id"], item["purpose"])]
        assert b64d(item["spki"]) == public.spki()
        on_phone[(item["petition_id"], item["purpose"])] = credential.finalize(public, b64d(item["blind_signature"]))
    assert set(on_phone) == {(petition.id, "sign"), (petition.id, "discuss")}

    # The laptop holds only the secret (a recovery code, a linked device): the same credentials, no new issuance.
    laptop = sign_in_as(new_browser(), db, member)
    state = laptop.get("/api/v1/wallet").json()
    assert state["due"] == [] and state["wallet_check"] == b64e(derive.check(secret))
    assert {item["spki"] for item in state["issued"]} == {
        b64e(db.get_one(IssuingKey, petition.id).spki),
        b64e(anonymous_discussion_spki(db, petition.id)),
    }
    assert finalize_kept(state, secret) == on_phone
    db.expire_all()
    assert db.get_one(IssuingKey, petition.id).tokens_issued == 1
    # Another wallet's secret finalizes nothing: a reply says nothing to anyone without the secret.
    with pytest.raises(blindrsa.BlindSignatureError):
        finalize_kept(state, derive.new_secret())


def anonymous_discussion_spki(db: Session, petition_id: int) -> bytes:
    from app.models.anonymous import DiscussionKey

    return bytes(db.get_one(DiscussionKey, petition_id).spki)


def test_a_burned_token_is_left_out_of_the_kept_replies(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    forfeited = open_anonymous(db, rt)
    kept = open_anonymous(db, rt, title="Publish the salary bands")
    member = factories.worker(db)
    secret = derive.new_secret()
    phone = sign_in_as(new_browser(), db, member)
    requests, _pending = derived_requests(phone.get("/api/v1/wallet").json(), secret)
    assert phone.api("POST", "/api/v1/wallet/tokens", {"tokens": requests}).status_code == 200
    # From a device without the token, the member signs by name and gives up signing anonymously.
    laptop = sign_in_as(new_browser(), db, member)
    signed = laptop.api(
        "POST", f"/api/v1/petitions/{forfeited.id}/signature", {"visibility": "organizers", "forfeit": True}
    )
    assert signed.status_code == 201, signed.text
    db.expire_all()
    assert db.get_one(TokenIssuance, (member.id, forfeited.id)).burned
    issued = {(item["petition_id"], item["purpose"]) for item in laptop.get("/api/v1/wallet").json()["issued"]}
    assert issued == {(forfeited.id, "discuss"), (kept.id, "sign"), (kept.id, "discuss")}


def test_issuance_still_needs_no_wallet_check(browser: Browser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    sign_in_as(browser, db, factories.worker(db))
    requests, _pending = derived_requests(browser.get("/api/v1/wallet").json(), derive.new_secret())
    assert browser.api("POST", "/api/v1/wallet/tokens", {"tokens": requests}).status_code == 200
    assert count_rows(db, "wallet_checks") == 0
    db.expire_all()
    assert db.get_one(IssuingKey, petition.id).tokens_issued == 1


def test_asking_again_for_what_was_issued_is_a_plain_409_and_writes_nothing(
    browser: Browser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = factories.worker(db)
    sign_in_as(browser, db, member)
    secret = derive.new_secret()
    requests, _pending = derived_requests(browser.get("/api/v1/wallet").json(), secret)
    assert browser.api("POST", "/api/v1/wallet/tokens", {"tokens": requests}).status_code == 200
    before = (count_rows(db, "token_issuances"), count_rows(db, "discussion_issuances"))
    again = browser.api("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    assert again.status_code == 409
    assert again.json()["error"]["message"].startswith(
        "Nothing is due any more: these credentials were already issued to your account"
    )
    assert (count_rows(db, "token_issuances"), count_rows(db, "discussion_issuances")) == before
    db.expire_all()
    assert db.get_one(IssuingKey, petition.id).tokens_issued == 1


# Races, on committed transactions -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def race_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database of its own (these requests commit): a SQLite file, or a scratch PostgreSQL database."""
    with scratch_database(request.param, tmp_path, "wallet_race") as url:
        yield url


@pytest.fixture
def race_server(race_url: str) -> Iterator[live_server.LiveServer]:
    sock = live_server.reserve_port()
    settings = make_settings(
        race_url, rate_limit_sign="1000/minute", base_url=f"http://127.0.0.1:{sock.getsockname()[1]}"
    )
    live = live_server.start(create_app(settings), sock)
    try:
        yield live
    finally:
        live.stop()


def _two_devices(live: live_server.LiveServer, *, petitions: int = 0) -> tuple[int, list[int], list[httpx2.Client]]:
    """One member signed in on two devices (two sessions), and `petitions` open anonymous petitions."""
    app = live.app
    rt = app.state.runtime
    with app.state.sessionmaker() as db:
        opened = [open_anonymous(db, rt, title=f"Petition {index}").id for index in range(petitions)]
        member = factories.worker(db)
        now = datetime.now(UTC)
        cookies = [account_sessions.start(db=db, user=member, now=now, days=1) for _ in range(2)]
        db.commit()
        member_id = member.id
    devices = []
    for cookie in cookies:
        device = httpx2.Client(
            base_url=live.base_url,
            cookies={account_sessions.SESSION_COOKIE: cookie},
            timeout=60,
            trust_env=False,
            verify=live_server.tls(),
        )
        device.headers["X-CSRF-Token"] = device.get("/api/v1/csrf").json()["csrf_token"]
        devices.append(device)
    return member_id, opened, devices


def _together(devices: list[httpx2.Client], send: Callable[[httpx2.Client], httpx2.Response]) -> list[httpx2.Response]:
    barrier = threading.Barrier(len(devices))

    def go(device: httpx2.Client) -> httpx2.Response:
        barrier.wait()
        return send(device)

    with ThreadPoolExecutor(max_workers=len(devices)) as pool:
        return list(pool.map(go, devices))


def _rows(live: live_server.LiveServer, statement):
    app = live.app
    with Session(app.state.engine) as db:
        return db.execute(statement).all()


def test_two_devices_starting_different_wallets_at_once_one_wins(race_server: live_server.LiveServer) -> None:
    member_id, _opened, devices = _two_devices(race_server)
    checks = [derive.check(derive.new_secret()) for _ in devices]
    bodies = dict(zip(map(id, devices), checks, strict=True))
    answers = _together(
        devices, lambda device: device.post("/api/v1/wallet/check", json={"check": b64e(bodies[id(device)])})
    )
    assert sorted(answer.status_code for answer in answers) == [201, 409], [answer.text for answer in answers]
    winner = checks[[answer.status_code for answer in answers].index(201)]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert "started on another device" in refused.json()["error"]["message"]
    assert [tuple(row) for row in _rows(race_server, select(WalletCheck.account_id, WalletCheck.check))] == [
        (member_id, winner)
    ]
    for device in devices:  # the loser learns which wallet won, and joins it by code or link
        assert device.get("/api/v1/wallet").json()["wallet_check"] == b64e(winner)
        device.close()


def test_two_devices_of_one_wallet_starting_it_at_once_both_succeed(race_server: live_server.LiveServer) -> None:
    _member_id, _opened, devices = _two_devices(race_server)
    check = b64e(derive.check(derive.new_secret()))
    answers = _together(devices, lambda device: device.post("/api/v1/wallet/check", json={"check": check}))
    assert sorted(answer.status_code for answer in answers) == [200, 201]
    assert _rows(race_server, select(func.count()).select_from(WalletCheck)) == [(1,)]
    for device in devices:
        device.close()


def test_two_devices_collecting_the_same_credentials_at_once_one_is_issued(race_server: live_server.LiveServer) -> None:
    member_id, opened, devices = _two_devices(race_server, petitions=2)
    secret = derive.new_secret()
    state = devices[0].get("/api/v1/wallet").json()
    requests, pending = derived_requests(state, secret)
    assert len(requests) == 4
    # Both devices derive exactly the same requests from the one secret, and send them at the same moment.
    assert derived_requests(devices[1].get("/api/v1/wallet").json(), secret)[0] == requests
    answers = _together(devices, lambda device: device.post("/api/v1/wallet/tokens", json={"tokens": requests}))
    assert sorted(answer.status_code for answer in answers) == [200, 409], [answer.text for answer in answers]
    won, lost = sorted(answers, key=lambda answer: answer.status_code)
    assert lost.json()["error"]["message"].startswith("Nothing is due any more")
    # Nothing half-written: one issuance per credential, each counted once.
    assert _rows(race_server, select(func.count()).select_from(TokenIssuance)) == [(2,)]
    assert _rows(race_server, select(func.count()).select_from(DiscussionIssuance)) == [(2,)]
    assert sorted(_rows(race_server, select(IssuingKey.petition_id, IssuingKey.tokens_issued))) == [
        (opened[0], 1),
        (opened[1], 1),
    ]
    # The device that lost finalizes the same credentials from the replies the server kept.
    first = {}
    for item in won.json()["tokens"]:
        public, credential = pending[(item["petition_id"], item["purpose"])]
        first[(item["petition_id"], item["purpose"])] = credential.finalize(public, b64d(item["blind_signature"]))
    loser = devices[[answer.status_code for answer in answers].index(409)]
    state = loser.get("/api/v1/wallet").json()
    assert state["due"] == []
    assert finalize_kept(state, secret) == first
    for key, signature in first.items():
        blindrsa.verify(pending[key][0], pending[key][1].message, signature)
    assert member_id
    for device in devices:
        device.close()


def test_the_check_value_opens_nothing_and_names_no_secret(browser: Browser, db: Session) -> None:
    """What the server keeps of a wallet: 16 bytes derived one-way from the secret, and a day."""
    sign_in_as(browser, db, factories.worker(db))
    secret = derive.new_secret()
    assert start_wallet(browser, derive.check(secret)).status_code == 201
    db.expire_all()
    columns = db.execute(text("SELECT * FROM wallet_checks")).one()._mapping
    assert set(columns) == {"account_id", "check", "started_on"}
    stored = bytes(columns["check"])
    assert secret not in stored and stored == derive.check(secret)
    assert anonymous.encode(secret) not in str(dict(columns))
