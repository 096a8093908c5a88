"""Signatures arriving at the same moment, through a real server and committed transactions.

These tests cannot run inside the rolled-back test transaction: each works on a database of its own (a SQLite
file, or a scratch PostgreSQL database next to TEST_DATABASE_URL).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import sessions as account_sessions
from app.main import create_app
from app.models.accounts import Role, RoleGrant, User
from app.models.petitions import Petition, PetitionEvent
from app.models.signatures import Signature
from app.petitions import service as petitions
from app.petitions.schemas import PetitionDraft
from tests import live_server
from tests.conftest import make_settings
from tests.server_process import scratch_database

SIGNERS = 200
THRESHOLD = 150


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path, "concurrency") as url:
        yield url


@pytest.fixture
def server(scratch_url: str) -> Iterator[live_server.LiveServer]:
    sock = live_server.reserve_port()
    settings = make_settings(
        scratch_url,
        response_threshold=THRESHOLD,
        escalation_threshold=10_000,
        rate_limit_sign="1000/minute",
        base_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
    )
    live = live_server.start(create_app(settings), sock)
    try:
        yield live
    finally:
        live.stop()


def _arrange(live: live_server.LiveServer, accounts: int) -> tuple[int, list[str]]:
    """An open petition and `accounts` signed-in workers (their session cookies), committed."""
    app = live.app
    rt = app.state.runtime
    now = datetime.now(UTC)
    with app.state.sessionmaker.begin() as db:
        people = [
            User(
                email=f"signer{i}@example.org",
                display_name=f"Signer {i}",
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
            for i in range(accounts)
        ]
        creator = User(
            email="creator@example.org", display_name="Creator", email_verified_at=now, created_at=now, roles=[]
        )
        moderator = User(
            email="moderator@example.org",
            display_name="Moderator",
            email_verified_at=now,
            created_at=now,
            roles=[RoleGrant(role=Role.moderator, granted_at=now)],
        )
        db.add_all([*people, creator, moderator])
        db.flush()
        petition = petitions.create_draft(
            db=db,
            rt=rt,
            creator=creator,
            form=PetitionDraft(
                title="Concurrent", ask="Count us exactly.", background="Many of us sign at once.", category="other"
            ),
        )
        petitions.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=creator)
        token = petitions.sponsor_token(rt=rt, petition=petition)
        for sponsor in people[: rt.settings.sponsors_required]:
            petitions.sponsor(db=db, rt=rt, petition=petition, token=token, user=sponsor)
        petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
        cookies = [account_sessions.start(db=db, user=person, now=now, days=1) for person in people]
        return petition.id, cookies


def _client(live: live_server.LiveServer, session_id: str) -> tuple[httpx2.Client, str]:
    client = httpx2.Client(
        base_url=live.base_url,
        cookies={account_sessions.SESSION_COOKIE: session_id},
        timeout=60,
        trust_env=False,
        verify=live_server.tls(),
    )
    token = client.get("/api/v1/csrf").json()["csrf_token"]
    return client, token


def _count(live: live_server.LiveServer, petition_id: int) -> tuple[int, int, int]:
    with Session(live.app.state.engine) as db:
        rows = db.scalar(select(func.count()).select_from(Signature).where(Signature.petition_id == petition_id))
        counter = db.scalar(select(Petition.signature_count).where(Petition.id == petition_id))
        events = db.scalar(
            select(func.count())
            .select_from(PetitionEvent)
            .where(PetitionEvent.petition_id == petition_id, PetitionEvent.kind == "response_threshold_reached")
        )
        return rows or 0, counter or 0, events or 0


def test_two_simultaneous_signatures_from_one_account_make_one(server: live_server.LiveServer) -> None:
    petition_id, [cookie] = _arrange(server, 1)
    clients = [_client(server, cookie) for _ in range(2)]
    barrier = threading.Barrier(len(clients))

    def sign(client_and_token: tuple[httpx2.Client, str]) -> httpx2.Response:
        client, token = client_and_token
        barrier.wait()
        return client.post(
            f"/api/v1/petitions/{petition_id}/signature", json={"visibility": "public"}, headers={"X-CSRF-Token": token}
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(sign, clients))
    for client, _ in clients:
        client.close()
    assert sorted(response.status_code for response in responses) == [201, 409]
    refused = next(response for response in responses if response.status_code == 409)
    assert refused.json()["error"]["message"] == "You have already signed this petition."
    assert _count(server, petition_id)[:2] == (1, 1)


def test_many_simultaneous_signatures_are_counted_exactly_and_cross_the_threshold_once(
    server: live_server.LiveServer,
) -> None:
    petition_id, cookies = _arrange(server, SIGNERS)
    clients = [_client(server, cookie) for cookie in cookies]
    barrier = threading.Barrier(32)

    def sign(index: int) -> int:
        client, token = clients[index]
        if index < 32:
            barrier.wait()  # the first wave leaves together
        response = client.post(
            f"/api/v1/petitions/{petition_id}/signature",
            json={"visibility": "organizers" if index % 2 else "public"},
            headers={"X-CSRF-Token": token},
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(sign, range(SIGNERS)))
    for client, _ in clients:
        client.close()
    assert statuses == [201] * SIGNERS
    rows, counter, threshold_events = _count(server, petition_id)
    assert rows == counter == SIGNERS
    assert threshold_events == 1


@pytest.fixture
def starved_server(scratch_url: str) -> Iterator[live_server.LiveServer]:
    """One connection and two worker threads: far more requests in flight than either."""
    sock = live_server.reserve_port()
    settings = make_settings(
        scratch_url,
        rate_limit_sign="1000/minute",
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=3,
        worker_threads=2,
        base_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
    )
    live = live_server.start(create_app(settings), sock)
    try:
        yield live
    finally:
        live.stop()


def test_more_requests_than_threads_and_connections_all_complete(starved_server: live_server.LiveServer) -> None:
    """No request holds a connection while it waits for a worker thread: otherwise requests holding the only
    connection wait for threads that are all waiting for that connection, until the pool gives up (503)."""
    petition_id, cookies = _arrange(starved_server, 24)
    clients = [_client(starved_server, cookie) for cookie in cookies]
    barrier = threading.Barrier(len(clients))

    def sign_and_read(index: int) -> tuple[int, int]:
        client, token = clients[index]
        barrier.wait()
        signed = client.post(
            f"/api/v1/petitions/{petition_id}/signature", json={"visibility": "public"}, headers={"X-CSRF-Token": token}
        )
        read = client.get(f"/api/v1/petitions/{petition_id}/signature")
        return signed.status_code, read.status_code

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        statuses = list(pool.map(sign_and_read, range(len(clients))))
    for client, _ in clients:
        client.close()
    assert statuses == [(201, 200)] * len(clients)
    assert _count(starved_server, petition_id)[:2] == (24, 24)
