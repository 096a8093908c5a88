"""The server killed with SIGKILL while people sign, then started again on the same database: every signature
acknowledged is kept, the counter matches the rows, and a signature in flight is wholly there or wholly absent.

The server runs as `undersigned serve` in processes of its own, on a database of the test's own (a SQLite file,
or a scratch PostgreSQL database next to TEST_DATABASE_URL), since a kill must reach committed data.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts import sessions as account_sessions
from app.core.database import build_engine, build_sessionmaker
from app.core.runtime import Runtime
from app.core.web import CSRF_COOKIE
from app.models.accounts import Role, RoleGrant, User
from app.models.petitions import Petition, PetitionEvent
from app.models.signatures import Signature, Visibility
from app.petitions import service as petitions
from app.petitions.schemas import PetitionDraft
from app.signatures import service as signing
from tests.live_server import tls
from tests.server_process import ServerProcess, refuse_connections, run_command, runtime, scratch_database

# Sized to the property, not to a load test: CONCURRENCY requests in flight at the kill, some signers not yet
# sent, and a threshold no signing before the kill can reach (KILL_AFTER + CONCURRENCY < THRESHOLD < SIGNERS).
SIGNERS = 160
KILL_AFTER = 50  # acknowledged signatures before the kill: well inside the load, with many requests in flight
CONCURRENCY = 24
THRESHOLD = 110  # crossed after the restart; its event must be recorded exactly once
assert KILL_AFTER + CONCURRENCY < THRESHOLD < SIGNERS


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path, "faults_kill") as url:
        yield url


@dataclass(frozen=True)
class Signer:
    user_id: int
    name: str
    visibility: str
    headers: dict[str, str]


def _runtime(url: str) -> Runtime:
    return runtime(url, response_threshold=THRESHOLD, escalation_threshold=10_000)


def _arrange(url: str, rt: Runtime) -> tuple[int, list[Signer]]:
    """An open petition and SIGNERS signed-in workers, each with the cookies and CSRF header a browser sends."""
    now = datetime.now(UTC)
    engine = build_engine(url)
    with build_sessionmaker(engine).begin() as db:
        people = [
            User(
                email=f"signer{i}@example.org",
                display_name=f"Signer Number {i}",
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
            for i in range(SIGNERS)
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
        sponsors = [
            User(
                email=f"sponsor{i}@example.org",
                display_name=f"Sponsor {i}",
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
            for i in range(rt.settings.sponsors_required)
        ]
        db.add_all([*people, creator, moderator, *sponsors])
        db.flush()
        petition = petitions.create_draft(
            db=db,
            rt=rt,
            creator=creator,
            form=PetitionDraft(
                title="Keep every signature",
                ask="Count us exactly, even when the server dies.",
                background="The server is killed while we sign.",
                category="other",
            ),
        )
        petitions.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=creator)
        token = petitions.sponsor_token(rt=rt, petition=petition)
        for sponsor in sponsors:
            petitions.sponsor(db=db, rt=rt, petition=petition, token=token, user=sponsor)
        petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
        signers = []
        for index, person in enumerate(people):
            session_id, seed = account_sessions.start(db=db, user=person, now=now, days=1), secrets.token_urlsafe()
            signers.append(
                Signer(
                    user_id=person.id,
                    name=person.display_name,
                    visibility=Visibility.public if index % 2 else Visibility.organizers,
                    headers={
                        "Cookie": f"{account_sessions.SESSION_COOKIE}={session_id}; {CSRF_COOKIE}={seed}",
                        "X-CSRF-Token": rt.keyring.csrf_token(seed, session_id),
                    },
                )
            )
        petition_id = petition.id
    engine.dispose()
    return petition_id, signers


@dataclass
class Outcome:
    acknowledged: list[Signer] = field(default_factory=list)  # answered 201
    refused: list[tuple[Signer, int, str]] = field(default_factory=list)  # answered, not 201
    in_flight: list[Signer] = field(default_factory=list)  # sent, no answer: the server died meanwhile
    unsent: list[Signer] = field(default_factory=list)


async def _sign(
    server: ServerProcess, petition_id: int, signers: list[Signer], *, kill_after: int | None = None
) -> Outcome:
    """Every signer signs once, CONCURRENCY at a time; with `kill_after`, the server is killed as soon as that
    many signatures are acknowledged, and no new request starts after it."""
    outcome = Outcome()
    queue: asyncio.Queue[Signer] = asyncio.Queue()
    for signer in signers:
        queue.put_nowait(signer)
    killed = False
    limits = httpx2.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx2.AsyncClient(
        base_url=server.base_url, limits=limits, timeout=60, trust_env=False, verify=tls()
    ) as client:

        async def sign_in_turn() -> None:
            nonlocal killed
            while not killed and not queue.empty():
                signer = queue.get_nowait()
                try:
                    response = await client.post(
                        f"/api/v1/petitions/{petition_id}/signature",
                        json={"visibility": signer.visibility},
                        headers=signer.headers,
                    )
                except httpx2.TransportError:
                    outcome.in_flight.append(signer)
                    continue
                if response.status_code != 201:
                    outcome.refused.append((signer, response.status_code, response.text))
                    continue
                outcome.acknowledged.append(signer)
                if kill_after is not None and not killed and len(outcome.acknowledged) >= kill_after:
                    killed = True
                    server.kill()

        await asyncio.gather(*(sign_in_turn() for _ in range(CONCURRENCY)))
    while not queue.empty():
        outcome.unsent.append(queue.get_nowait())
    return outcome


def _stored(url: str, petition_id: int) -> tuple[list[Signature], int, int]:
    """The petition's signature rows, its counter and its threshold events, read from the database itself."""
    engine = build_engine(url)
    # One snapshot for rows and counter (SQLite's transactions always read one).
    snapshot = engine.execution_options(isolation_level="REPEATABLE READ") if url.startswith("postgresql") else engine
    with Session(snapshot, expire_on_commit=False) as db, db.begin():
        rows = list(db.scalars(select(Signature).where(Signature.petition_id == petition_id)))
        counter = db.scalar(select(Petition.signature_count).where(Petition.id == petition_id))
        events = db.scalar(
            select(func.count())
            .select_from(PetitionEvent)
            .where(PetitionEvent.petition_id == petition_id, PetitionEvent.kind == "response_threshold_reached")
        )
    engine.dispose()
    return rows, int(counter or 0), int(events or 0)


def _assert_whole(rows: list[Signature], signers: list[Signer], rt: Runtime, petition_id: int) -> None:
    """Every row is complete and is the signature its signer asked for: no half-written row."""
    by_user = {signer.user_id: signer for signer in signers}
    open_name = rt.sealer.opener(context=signing.name_context(petition_id))
    for row in rows:
        assert row.account_id is not None
        signer = by_user[row.account_id]
        assert row.visibility == signer.visibility and row.signed_hour is not None and row.invalidation_id is None
        if signer.visibility == Visibility.public:
            assert (row.public_name, row.sealed_name) == (signer.name, None)
        else:
            assert row.public_name is None and row.sealed_name is not None and open_name(row.sealed_name) == signer.name


def _run(coroutine):
    """asyncio.run in a thread of its own: the browser tests' Playwright keeps an event loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_server_killed_while_people_sign_keeps_every_acknowledged_signature_and_an_exact_count(
    database: str, tmp_path: Path
) -> None:
    rt = _runtime(database)
    petition_id, signers = _arrange(database, rt)
    _, counted_before, _ = _stored(database, petition_id)
    server = ServerProcess(
        database,
        tmp_path / "server.log",
        settings={
            "rate_limit_sign": "1000/minute",
            "response_threshold": str(THRESHOLD),
            "escalation_threshold": "10000",
        },
    )
    try:
        before = _run(_sign(server.start(), petition_id, signers, kill_after=KILL_AFTER))
        assert server.process is None, "the load ended before the kill"
        assert before.refused == [], before.refused[:3]

        # What the dead server left behind, before anything else touches the database.
        rows, counter, _ = _stored(database, petition_id)
        stored = {row.account_id for row in rows}
        assert len(rows) == len(stored), "one signature per signer"
        assert {signer.user_id for signer in before.acknowledged} <= stored, "an acknowledged signature was lost"
        landed = [signer for signer in before.in_flight if signer.user_id in stored]
        assert stored <= {signer.user_id for signer in before.acknowledged + landed}, "a row nobody sent"
        assert counter - counted_before == len(rows), "the counter and the rows disagree"
        _assert_whole(rows, signers, rt, petition_id)
        recount = run_command(database, "tally", "recount", "--dry-run")
        assert recount.returncode == 0 and "Every counter matches its signatures." in recount.stdout, recount

        # The same server started again; the people whose requests got no answer send them again, and the
        # people who had not sent theirs yet send them now.
        again = before.in_flight + before.unsent
        after = _run(_sign(server.start(), petition_id, again))
        server.stop()
    finally:
        server.stop()
    assert after.in_flight == []
    answers = Counter((status, json.loads(text)["error"]["message"]) for _, status, text in after.refused)
    assert set(answers) <= {(409, "You have already signed this petition.")}, answers
    already = [signer for signer, _, _ in after.refused]
    assert {signer.user_id for signer in already} == {signer.user_id for signer in landed}, (
        "re-sent: refused as already signed exactly when it had landed"
    )

    rows, counter, threshold_events = _stored(database, petition_id)
    assert sorted(row.account_id for row in rows if row.account_id is not None) == sorted(
        signer.user_id for signer in signers
    )
    assert counter - counted_before == len(rows) == SIGNERS
    assert threshold_events == 1
    _assert_whole(rows, signers, rt, petition_id)
    print(
        f"\n{database.split(':')[0]}: acknowledged {len(before.acknowledged)} before the kill, "
        f"{len(before.in_flight)} in flight ({len(landed)} landed), {len(before.unsent)} not sent; "
        f"after the restart {len(after.acknowledged)} signed and {len(already)} refused as already signed; "
        f"rows {len(rows)}, counter {counter - counted_before}"
    )


@pytest.fixture
def postgresql_database(tmp_path: Path) -> Iterator[str]:
    with scratch_database("postgresql", tmp_path, "faults_outage") as url:
        yield url


def test_a_database_outage_is_a_503_in_plain_words_and_service_resumes_after_it(
    postgresql_database: str, tmp_path: Path
) -> None:
    rt = _runtime(postgresql_database)
    petition_id, [signer, *_] = _arrange(postgresql_database, rt)
    server = ServerProcess(postgresql_database, tmp_path / "server.log").start()
    try:
        with httpx2.Client(base_url=server.base_url, timeout=60, trust_env=False, verify=tls()) as client:
            assert client.get("/").status_code == 200
            assert client.get(f"/petitions/{petition_id}").status_code == 200

            refuse_connections(postgresql_database, refuse=True)
            try:
                page = client.get(f"/petitions/{petition_id}")
                listing = client.get("/api/v1/petitions")
                signing = client.post(
                    f"/api/v1/petitions/{petition_id}/signature", json={"visibility": "public"}, headers=signer.headers
                )
                ready = client.get("/readyz")
            finally:
                refuse_connections(postgresql_database, refuse=False)

            assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
            assert "The database cannot be reached right now. Please try again in a minute." in page.text
            assert "Traceback" not in page.text and "psycopg" not in page.text and "OperationalError" not in page.text
            assert page.headers["retry-after"] == "30"
            for answer in (listing, signing):
                assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
                assert answer.json()["error"]["code"] == "unavailable", answer.text
                assert "psycopg" not in answer.text
            assert ready.status_code == 503 and ready.json() == {"status": "unavailable", "database": "unreachable"}

            # Service resumes with the database: no restart, and the signature refused above can be made now.
            assert client.get(f"/petitions/{petition_id}").status_code == 200
            assert client.get("/api/v1/petitions").status_code == 200
            signed = client.post(
                f"/api/v1/petitions/{petition_id}/signature", json={"visibility": "public"}, headers=signer.headers
            )
            assert signed.status_code == 201 and signed.json()["signature_count"] == 1

            # Connections cut with no outage around it (a database restart nobody was using it during): the
            # pool is not pinged before each use, so the one request that meets a cut connection answers 503,
            # and the pool is renewed for the next.
            refuse_connections(postgresql_database, refuse=True)
            refuse_connections(postgresql_database, refuse=False)
            assert [client.get(f"/petitions/{petition_id}").status_code for _ in range(2)] == [503, 200]
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "database unavailable" in log and "unhandled error" not in log
