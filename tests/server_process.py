"""For tests that kill things: a database of their own (committed, outside the rolled-back test transaction)
and the real server or worker in processes of their own, which can be killed with SIGKILL and started again."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.core import migrations
from app.core.clock import SystemClock
from app.core.database import build_engine
from app.core.runtime import Runtime, build_runtime
from app.core.templating import build_templates
from tests.conftest import TEST_SECRET, make_settings, missing, project_root
from tests.live_server import tls

COMMAND = str(Path(sys.executable).parent / "undersigned")


@contextmanager
def scratch_database(kind: str, folder: Path, name: str) -> Iterator[str]:
    """A migrated database for one test: a SQLite file in `folder`, or a PostgreSQL database named after
    TEST_DATABASE_URL's with `_name` (and a number) appended, dropped afterwards (see _drop_later)."""
    if kind == "sqlite":
        yield migrated_sqlite(folder / f"{name}.db")
        return
    base_url = make_url(admin_url())
    database = f"{base_url.database}_{name}_{next(_SCRATCH_NUMBERS)}"
    admin = build_engine(base_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{_postgresql_template()}"'))
        yield base_url.set(database=database).render_as_string(hide_password=False)
    finally:
        # As DROP DATABASE ... WITH (FORCE) did: nothing the test left connected outlives it.
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": database},
            )
        admin.dispose()
        _drop_later(database)


# Scratch databases are copies of one database this process migrated (a template), not migrated each: migrating
# costs 1-3 s (0.5-1 s of CPU), and the suite makes a few dozen. A SQLite one is a copy of the file; a PostgreSQL
# one is made by CREATE DATABASE ... TEMPLATE (0.3 s; PostgreSQL 15 copies it through the WAL, no checkpoint).
# Dropping one is left to a thread of its own: DROP DATABASE makes PostgreSQL write every dirty page of every
# database to disk and wait for it (a checkpoint), which took 5-30 s under the suite's load, each time, and the
# test that dropped it waited. The thread drops them one after another while the tests go on, and the process
# waits for the last at its end (drop_scratch_databases, from tests/conftest.py's pytest_unconfigure).
_SCRATCH_NUMBERS = itertools.count(1)
_TEMPLATES: dict[str, str] = {}
_TEMPLATE_LOCK = threading.Lock()
_TO_DROP: queue.Queue[str | None] = queue.Queue()
_DROPPER: list[threading.Thread] = []


def migrated_sqlite(path: Path) -> str:
    """A migrated SQLite database at `path` (a copy of this process's template), and its URL."""
    with _TEMPLATE_LOCK:
        template = _TEMPLATES.get("sqlite")
        if template is None:
            folder = Path(tempfile.mkdtemp(prefix="undersigned-template-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            template = str(folder / "template.db")
            migrations.upgrade(f"sqlite:///{template}")
            with contextlib.closing(sqlite3.connect(template)) as connection:  # the whole database in one file
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _TEMPLATES["sqlite"] = template
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def _postgresql_template() -> str:
    """The name of this process's migrated PostgreSQL database that scratch databases copy; nothing stays
    connected to it (CREATE DATABASE ... TEMPLATE requires that)."""
    with _TEMPLATE_LOCK:
        if "postgresql" not in _TEMPLATES:
            base_url = make_url(admin_url())
            database = f"{base_url.database}_template"
            admin = build_engine(base_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{database}"'))
            admin.dispose()
            _drop_later(database, only_at_exit=True)
            migrations.upgrade(base_url.set(database=database).render_as_string(hide_password=False))
            _TEMPLATES["postgresql"] = database
        return _TEMPLATES["postgresql"]


_AT_EXIT: list[str] = []


def _drop_later(database: str, *, only_at_exit: bool = False) -> None:
    if only_at_exit:
        _AT_EXIT.append(database)
        return
    if not _DROPPER:
        _DROPPER.append(threading.Thread(target=_drop_queued, name="scratch-database-dropper", daemon=True))
        _DROPPER[0].start()
    _TO_DROP.put(database)


def _drop_queued() -> None:
    admin = build_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    while (database := _TO_DROP.get()) is not None:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        except Exception as error:  # noqa: BLE001 - the next ones are still dropped; this one is named
            logging.getLogger("tests").warning("could not drop the scratch database %s: %s", database, error)
    admin.dispose()


def drop_scratch_databases() -> None:
    """At the end of the process: wait for the scratch databases queued for dropping, then drop the template."""
    if _DROPPER:
        _TO_DROP.put(None)
        _DROPPER.pop().join()
    if _AT_EXIT:
        admin = build_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            for database in _AT_EXIT:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        _AT_EXIT.clear()
        _TEMPLATES.pop("postgresql", None)


def admin_url() -> str:
    """TEST_DATABASE_URL, from where scratch databases are made (and refused connections, for outages)."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base:
        missing("TEST_DATABASE_URL is not set: PostgreSQL tests need a scratch database")
    return base.replace("postgresql://", "postgresql+psycopg://", 1) if base.startswith("postgresql://") else base


def wait_for_no_connections(url: str, *, timeout: float = 60.0) -> None:
    """Until no one but this check is connected to the PostgreSQL database at `url`."""
    engine = build_engine(url, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                others = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            if others == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{others} connections to {make_url(url).database} did not end")
            time.sleep(0.05)
    finally:
        engine.dispose()


def refuse_connections(url: str, *, refuse: bool) -> None:
    """As a PostgreSQL server does while it restarts: new connections refused, the open ones cut."""
    database = make_url(url).database
    admin = build_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {"false" if refuse else "true"}'))
        if refuse:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": database}
            )
    admin.dispose()


def runtime(database_url: str, **overrides: object) -> Runtime:
    """The runtime a server or worker process builds from `environment(database_url)`: the same keys, so what
    a test arranges through services (sealed names, CSRF tokens, mail) is what those processes read."""
    settings = make_settings(database_url, **overrides)
    return build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)


def environment(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a server or worker process in the test environment, on `database_url`."""
    return {
        **os.environ,
        "UNDERSIGNED_ENVIRONMENT": "test",
        "UNDERSIGNED_DATABASE_URL": database_url,
        "UNDERSIGNED_SECRET_KEY": TEST_SECRET,
        "UNDERSIGNED_INPROCESS_WORKER": "false",
        "PYTHONPATH": str(project_root()),
        **{f"UNDERSIGNED_{key.upper()}": value for key, value in settings.items()},
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """`undersigned serve` in a process group of its own: SIGKILL reaches the supervisor and every worker."""

    database_url: str
    log: Path
    workers: int = 1
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> ServerProcess:
        """Start on a free port and return once the database answers through it (/readyz)."""
        self.port = free_port()
        self.settings.setdefault("base_url", self.base_url)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [COMMAND, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
                cwd=project_root(),
                env=environment(self.database_url, **self.settings),
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx2.get(f"{self.base_url}/readyz", timeout=2, trust_env=False, verify=tls()).status_code == 200:
                    return self
            except httpx2.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start; see {self.log}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to the whole group, as when the machine or container dies: nothing gets to clean up.

        Returns once PostgreSQL has ended the dead server's connections: a COMMIT it sent just before dying
        still completes, and reading the database earlier could miss it.
        """
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        if self.database_url.startswith("postgresql"):
            wait_for_no_connections(self.database_url)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


def run_command(database_url: str, *arguments: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`undersigned <arguments>` against `database_url`, as an operator runs it."""
    return subprocess.run(
        [COMMAND, *arguments],
        check=False,
        cwd=project_root(),
        env=environment(database_url, **settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
