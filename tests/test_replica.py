"""A read replica (settings.database_replica_url) serves the public reads, and only them (docs/scaling.md): the
tally report (API and page), the signature log's API and the scoreboard.

Two SQLite files stand for the primary and its replica: the replica is a copy of the primary taken at one moment,
opened read-only, so whatever the app asks of it afterwards tells which database answered.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.accounts import sessions as account_sessions
from app.core import migrations
from app.core.database import build_engine, build_sessionmaker
from app.main import create_app
from tests import factories
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, copied by each test (migrating takes seconds)."""
    path = tmp_path_factory.mktemp("replica") / "migrated.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def databases(migrated: Path, tmp_path: Path) -> tuple[Path, Path]:
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    shutil.copy(migrated, primary)
    return primary, replica


def _copy(primary: Path, replica: Path) -> None:
    """The replica as of now: the primary's file, its WAL written into it first."""
    engine = build_engine(f"sqlite:///{primary}")
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    for leftover in (replica.with_name(replica.name + "-wal"), replica.with_name(replica.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(primary, replica)


def _catch_up(app) -> None:
    """Replication, as a new copy: the replica's connections are closed first, so they read the new file."""
    app.state.replica_sessionmaker.kw["bind"].dispose()
    _copy(_path(app.state.settings.database_url), _path(app.state.settings.database_replica_url))


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///").removeprefix("file:").split("?")[0])


@pytest.fixture
def app_with_replica(databases: tuple[Path, Path]) -> Iterator[tuple[object, TestClient]]:
    primary, replica = databases
    _copy(primary, replica)  # the replica starts level with the primary; tests then move the primary on
    settings = make_settings(
        f"sqlite:///{primary}",
        # Read-only, as a PostgreSQL hot standby is: a write that reached it would fail the request.
        database_replica_url=f"sqlite:///file:{replica}?mode=ro&uri=true",
    )
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield app, client


def _arrange(app, work):
    """Run `work(db, rt)` on the primary, committed."""
    sessions = build_sessionmaker(app.state.engine)
    with sessions() as db:
        result = work(db, app.state.runtime)
        db.commit()
        return result


def test_public_reads_go_to_the_replica_and_everything_else_to_the_primary(app_with_replica) -> None:
    app, client = app_with_replica
    # Opened after the replica's copy was taken: only the primary knows it.
    petition_id, session_id = _arrange(
        app,
        lambda db, rt: (
            factories.open_petition(db, rt).id,
            account_sessions.start(db=db, user=factories.worker(db), now=datetime.now(UTC), days=1),
        ),
    )

    # The public reads answer from the replica, which has not seen the petition.
    assert client.get(f"/api/v1/petitions/{petition_id}/tally").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/checkpoints").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/checkpoint").status_code == 404
    assert client.get(f"/petitions/{petition_id}/report").status_code == 404  # the tally report's page
    assert client.get("/scoreboard").status_code == 200 and client.get("/api/v1/scoreboard").status_code == 200
    # The petition itself, and a signed-in reader, come from the primary.
    assert client.get(f"/api/v1/petitions/{petition_id}").json()["signature_count"] == 0
    client.cookies.set(account_sessions.SESSION_COOKIE, session_id, domain="testserver.local")
    assert client.get("/api/v1/me").status_code == 200
    # A signature is written to the primary, by a reader whose session the replica has never seen.
    token = client.get("/api/v1/csrf").json()["csrf_token"]
    signed = client.post(
        f"/api/v1/petitions/{petition_id}/signature", json={"visibility": "public"}, headers={"X-CSRF-Token": token}
    )
    assert signed.status_code in (200, 201), signed.text
    assert client.get(f"/api/v1/petitions/{petition_id}").json()["signature_count"] == 1

    # Once the replica has caught up (a new copy), the public reads see what the primary wrote.
    _catch_up(app)
    tally = client.get(f"/api/v1/petitions/{petition_id}/tally")
    assert tally.status_code == 200, tally.text
    assert tally.json()["signature_count"] == 1
    for path in ("log", "log/checkpoints", "log/checkpoint"):
        assert client.get(f"/api/v1/petitions/{petition_id}/{path}").status_code == 200, path
    assert client.get(f"/petitions/{petition_id}/report").status_code == 200


def test_a_petition_past_its_deadline_is_read_from_the_replica_without_a_write(app_with_replica) -> None:
    """Reading closes a petition past its deadline; on a replica that write would fail the read (a 500)."""
    app, client = app_with_replica
    petition_id = _arrange(app, lambda db, rt: factories.open_petition(db, rt).id)
    engine = build_engine(app.state.settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE petitions SET deadline = :past WHERE id = :id"),
            {"past": datetime.now(UTC) - timedelta(days=1), "id": petition_id},
        )
    engine.dispose()
    _catch_up(app)

    assert client.get(f"/api/v1/petitions/{petition_id}/tally").status_code == 200
    assert client.get(f"/api/v1/petitions/{petition_id}/log").status_code == 200
    # The primary's next read closes it, as before.
    assert client.get(f"/api/v1/petitions/{petition_id}").json()["state"] == "closed"


def test_without_a_replica_public_reads_use_the_primary(databases: tuple[Path, Path]) -> None:
    primary, _replica = databases
    app = create_app(make_settings(f"sqlite:///{primary}"))
    with TestClient(app, base_url="http://testserver") as client:
        petition_id = _arrange(app, lambda db, rt: factories.open_petition(db, rt).id)
        assert client.get(f"/api/v1/petitions/{petition_id}/tally").status_code == 200
        assert client.get(f"/api/v1/petitions/{petition_id}/log").status_code == 200
