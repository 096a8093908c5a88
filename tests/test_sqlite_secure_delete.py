"""On SQLite, a deleted row's bytes are overwritten, not left in a free page for a copy of the file to show.

A withdrawn signature's token, or any row deleted to forget something, must not survive in the database file.
PostgreSQL keeps dead rows until VACUUM and in its WAL and backups: docs/deploy.md says what to configure.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.core.database import build_engine
from app.main import create_app
from tests.conftest import make_settings


def test_every_connection_of_the_app_runs_with_secure_delete(tmp_path: Path) -> None:
    from app.core import migrations

    url = f"sqlite:///{tmp_path / 'app.db'}"
    migrations.upgrade(url)
    app = create_app(make_settings(url))
    with TestClient(app):  # the lifespan builds the app's engine
        engine = app.state.engine
        with engine.connect() as first, engine.connect() as second:  # two pooled connections, each set up
            assert first.execute(text("PRAGMA secure_delete")).scalar_one() == 1
            assert second.execute(text("PRAGMA secure_delete")).scalar_one() == 1


def database_bytes(path: Path) -> bytes:
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def bytes_left_after_deleting(path: Path, *, secure_delete_off: bool = False) -> tuple[bool, bool]:
    """Write a distinctive value among neighbours, delete it, checkpoint the WAL: is it, and are they, in the file?"""
    engine = build_engine(f"sqlite:///{path}")
    secret = f"nullifier-{secrets.token_hex(24)}"
    with engine.begin() as connection:
        if secure_delete_off:
            connection.exec_driver_sql("PRAGMA secure_delete=OFF")
        connection.execute(text("CREATE TABLE tokens (id INTEGER PRIMARY KEY, nullifier TEXT, note TEXT)"))
        connection.execute(text("CREATE INDEX ix_tokens_nullifier ON tokens (nullifier)"))
        for number in range(50):  # neighbours on the same pages, which stay
            connection.execute(
                text("INSERT INTO tokens (nullifier, note) VALUES (:n, 'kept')"), {"n": f"other-{number:04d}"}
            )
        connection.execute(text("INSERT INTO tokens (nullifier, note) VALUES (:n, :n)"), {"n": secret})
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert secret.encode() in database_bytes(path), "the value was written (else this test proves nothing)"
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM tokens WHERE nullifier = :n"), {"n": secret})
    with engine.connect() as connection:
        busy, _log_frames, _checkpointed = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    engine.dispose()
    assert busy == 0
    left = database_bytes(path)
    return secret.encode() in left, b"other-0049" in left


def test_a_deleted_row_leaves_no_bytes_in_the_file_once_the_wal_is_checkpointed(tmp_path: Path) -> None:
    value_left, neighbours_left = bytes_left_after_deleting(tmp_path / "forget.db")
    assert not value_left and neighbours_left


def test_without_secure_delete_the_bytes_would_stay(tmp_path: Path) -> None:
    """The check above can fail: with the pragma off (as many SQLite builds default), the value stays."""
    value_left, _ = bytes_left_after_deleting(tmp_path / "kept.db", secure_delete_off=True)
    assert value_left


def test_the_connect_hook_turns_secure_delete_on_whatever_the_build_default() -> None:
    from app.core.database import _sqlite_pragmas

    raw = sqlite3.connect(":memory:")
    raw.execute("PRAGMA secure_delete=OFF")
    _sqlite_pragmas(raw, None)
    assert raw.execute("PRAGMA secure_delete").fetchone() == (1,)
    raw.close()
