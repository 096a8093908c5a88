"""One-time links used by many requests at once, through a real server and committed transactions (issue #21:
ten concurrent uses of one sign-in link opened four sessions, and eight password resets succeeded four times).

Like tests/test_concurrency.py, these work on a database of their own: a SQLite file, or a scratch PostgreSQL
database next to TEST_DATABASE_URL. The race needs PostgreSQL's concurrent writers; SQLite serialises them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.security import hash_password
from app.main import create_app
from app.models.accounts import User, UserSession
from app.models.mail import OutboxMessage
from tests import live_server
from tests.conftest import PASSWORD, make_settings
from tests.server_process import scratch_database

RACERS = 10


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path, "link_race") as url:
        yield url


@pytest.fixture
def server(scratch_url: str) -> Iterator[live_server.LiveServer]:
    sock = live_server.reserve_port()
    settings = make_settings(scratch_url, base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    live = live_server.start(create_app(settings), sock)
    try:
        yield live
    finally:
        live.stop()


def _mailed_link(live: live_server.LiveServer, ask: str) -> str:
    """A confirmed account, and the link it asked for at the page `ask`."""
    app = live.app
    now = datetime.now(UTC)
    with app.state.sessionmaker.begin() as db:
        db.add(
            User(
                email="ana@example.org",
                display_name="Ana",
                password_hash=hash_password(PASSWORD),
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
        )
    with httpx2.Client(base_url=live.base_url, timeout=60, trust_env=False, verify=live_server.tls()) as owner:
        token = owner.get("/api/v1/csrf").json()["csrf_token"]
        assert owner.post(ask, data={"email": "ana@example.org", "csrf_token": token}).status_code == 303
    with Session(app.state.engine) as db:
        body = db.scalars(select(OutboxMessage.body_text).order_by(OutboxMessage.id.desc())).first()
    found = re.search(r"https?://[^/\s]+(/\S+/[A-Za-z0-9_-]{20,})", body or "")
    assert found, body
    return found.group(1)


def _race(live: live_server.LiveServer, link: str, data: dict[str, str]) -> list[int]:
    clients = [
        httpx2.Client(base_url=live.base_url, timeout=60, trust_env=False, verify=live_server.tls())
        for _ in range(RACERS)
    ]
    tokens = [client.get("/api/v1/csrf").json()["csrf_token"] for client in clients]
    barrier = threading.Barrier(RACERS)

    def use(index: int) -> int:
        barrier.wait()
        return clients[index].post(link, data={**data, "csrf_token": tokens[index]}).status_code

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        statuses = list(pool.map(use, range(RACERS)))
    for client in clients:
        client.close()
    return statuses


def _sessions(live: live_server.LiveServer) -> int:
    app = live.app
    with Session(app.state.engine) as db:
        return db.scalar(select(func.count()).select_from(UserSession)) or 0


def test_a_sign_in_link_used_by_ten_requests_at_once_opens_one_session(server: live_server.LiveServer) -> None:
    link = _mailed_link(server, "/signin/link")
    statuses = _race(server, link, {})
    assert sorted(statuses) == [303] + [410] * (RACERS - 1), statuses
    assert _sessions(server) == 1


def test_a_password_reset_link_used_by_ten_requests_at_once_changes_the_password_once(
    server: live_server.LiveServer,
) -> None:
    link = _mailed_link(server, "/password/forgot")
    statuses = _race(server, link, {"password": "a brand new passphrase"})
    assert sorted(statuses) == [303] + [410] * (RACERS - 1), statuses
    assert _sessions(server) == 1
