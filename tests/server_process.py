"""For tests that kill things: a database of their own (committed, outside the rolled-back test transaction)
and the real server or worker in processes of their own, which can be killed with SIGKILL and started again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
    TEST_DATABASE_URL's with `_name` appended, dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'{name}.db'}"
        migrations.upgrade(url)
        yield url
        return
    base_url = make_url(admin_url())
    database = f"{base_url.database}_{name}"
    admin = build_engine(base_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))

    drop()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    url = base_url.set(database=database).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        yield url
    finally:
        drop()
        admin.dispose()


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
