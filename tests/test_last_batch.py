"""As a server stops, it writes the anonymous entries it holds that may go out (app/main.py), and waits for the
database a bounded time: a database that does not answer (another transaction holding SQLite's write lock) no
longer holds the shutdown up, and the line that says the batch is lost carries the hour only and nothing of what
the batch held."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.anonymous.queue import Entry, anonymous_queue
from app.core.database import build_engine, build_sessionmaker
from app.main import LAST_BATCH_THREAD, create_app
from app.models.signatures import Signature
from tests import factories
from tests.conftest import capture_logs, make_settings
from tests.server_process import migrated_sqlite, runtime

BATCHING = {"anonymous_batch_seconds": 300, "min_group_size": 1}


def anonymous_petition(url: str) -> int:
    engine = build_engine(url)
    try:
        with build_sessionmaker(engine, writes=True)() as db:  # the factories commit
            return factories.open_petition(db, runtime(url), allow_anonymous=True).id
    finally:
        engine.dispose()


def waiting_entry(petition_id: int) -> Entry:
    """An anonymous signature accepted and waiting in the process's memory for its batch."""
    message = secrets.token_bytes(32)
    return Entry(
        petition_id=petition_id,
        message=message,
        signature=secrets.token_bytes(128),
        nullifier=hashlib.sha256(message).hexdigest(),
    )


def anonymous_signatures(url: str, petition_id: int) -> int:
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            counted = select(func.count()).select_from(Signature).where(Signature.petition_id == petition_id)
            return connection.execute(counted).scalar_one()
    finally:
        engine.dispose()


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process's transaction holding SQLite's write lock, as a test's open transaction did."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def stop_after_queueing(url: str, entry: Entry, **settings: object) -> tuple[float, list[str]]:
    """Start the app, queue the entry, stop it: how long stopping took, and the log lines of the stop."""
    app = create_app(make_settings(url, **BATCHING, **settings))
    with capture_logs() as logs:
        with TestClient(app):
            anonymous_queue(app.state.runtime).add(entry)
            started = time.monotonic()
        return time.monotonic() - started, logs.lines


def test_a_server_that_stops_writes_the_last_batch(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path / "stop.db")
    petition_id = anonymous_petition(url)
    _, lines = stop_after_queueing(url, waiting_entry(petition_id), last_batch_seconds=30)
    assert anonymous_signatures(url, petition_id) == 1
    assert not [line for line in lines if "was not written in time" in line]


def test_a_database_that_does_not_answer_holds_the_stop_for_the_bound_only(tmp_path: Path) -> None:
    """The write lock held by another transaction: SQLite's busy timeout would hold each of the batch's
    transactions 30 s (the stop took over a minute); the server waits half a second and says so, by the hour."""
    path = tmp_path / "locked.db"
    url = migrated_sqlite(path)
    petition_id = anonymous_petition(url)
    entry = waiting_entry(petition_id)
    with write_lock_held(path):
        took, lines = stop_after_queueing(url, entry, last_batch_seconds=0.5)
    assert took < 10, f"stopping took {took:.1f} s"
    [said] = [json.loads(line) for line in lines if "was not written in time" in line]
    assert said["level"] == "warning" and "what it had not written is lost" in said["event"]
    assert said["time"].endswith(":00:00.000+00:00"), said  # the hour, nothing finer
    # Nothing of the batch: no petition, no token, no count.
    assert set(said) == {"time", "level", "logger", "event", "waited_seconds"}
    assert entry.nullifier not in json.dumps(said) and entry.message.hex() not in json.dumps(said)
    # The writer, left behind, finishes once the lock is gone (in a server, the process ends first).
    for thread in threading.enumerate():
        if thread.name == LAST_BATCH_THREAD:
            thread.join(60)
            assert not thread.is_alive()
