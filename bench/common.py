"""What the benchmark scripts share: a scratch PostgreSQL database, a server in its own process, percentiles,
and recording a report (bench/results/ and docs/benchmarks.md)."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin_execute(statement: str) -> None:
    from app.core.database import build_engine

    admin = build_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


def database_name(name: str) -> str:
    """`name` after the BENCH_DATABASE_PREFIX of the environment, if any: engineers who share a PostgreSQL server
    keep their runs apart (a bench drops its database first, whoever's run is using it)."""
    return os.environ.get("BENCH_DATABASE_PREFIX", "") + name


def database_url(name: str) -> str:
    return make_url(POSTGRES_ADMIN).set(database=database_name(name)).render_as_string(hide_password=False)


def scratch_database(name: str) -> str:
    """A new, migrated PostgreSQL database (any older one of that name is dropped first); its URL."""
    from app.core import migrations

    drop_database(name)
    _admin_execute(f'CREATE DATABASE "{database_name(name)}"')
    url = database_url(name)
    migrations.upgrade(url)
    return url


def drop_database(name: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{database_name(name)}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(
    url: str,
    port: int,
    log: Path,
    *,
    workers: int = 1,
    settings: dict[str, str] | None = None,
    target: str = "app.asgi:app",
    environ: dict[str, str] | None = None,
    wait_seconds: float = 30,
    spread: bool = False,
) -> subprocess.Popen[bytes]:
    """`target` (the app, or another ASGI app such as the bare insert) under uvicorn in its own process(es), on
    `url`, once it accepts connections. `settings` are the app's (UNDERSIGNED_ is added); `environ` any other. On a machine busy with other work,
    importing the app in each worker can take longer than the default `wait_seconds`. `spread`: each process with a
    listening socket of its own, new connections spread evenly among them (bench/spread.py), rather than uvicorn's
    one socket, where the first process to wake takes every connection waiting."""
    env = {
        **os.environ,
        "UNDERSIGNED_ENVIRONMENT": "test",
        "UNDERSIGNED_DATABASE_URL": url,
        "UNDERSIGNED_SECRET_KEY": SECRET,
        "UNDERSIGNED_INPROCESS_WORKER": "false",
        "PYTHONPATH": str(ROOT),
        **{f"UNDERSIGNED_{key.upper()}": value for key, value in (settings or {}).items()},
        **(environ or {}),
    }
    if spread:
        command = [sys.executable, "-m", "bench.spread", target, "--port", str(port), "--workers", str(workers)]
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            if spread:
                # The sockets take connections before their processes serve: up once every one of several new
                # connections, spread among the processes, is answered (any status: another app may have no
                # /healthz).
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                for _ in range(8 * workers):
                    try:
                        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=wait_seconds):
                            pass
                    except urllib.error.HTTPError:
                        pass
                return process
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                time.sleep(0.5 * workers)  # every worker process up
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{target} did not start; see {log}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
DATED = re.compile(r"\s*\(\d{4}-\d{2}-\d{2}\)\s*$")


def publish(report: str, *, bench: str, write: bool) -> None:
    """Print the report and, unless told not to, add it to the bench's history (bench/results/BENCH.md, newest last)
    and put the newest table of each configuration in the bench's block of docs/benchmarks.md: the page says where
    each figure stands today, the history how it got there."""
    print(report)
    if not write:
        return
    RESULTS.mkdir(exist_ok=True)
    history = RESULTS / f"{bench}.md"
    if not history.exists():
        history.write_text(f"# History of bench/{bench}.py\n\nEvery run, newest last.\n")
    with history.open("a") as handle:
        handle.write("\n" + report.strip() + "\n")
    PAGE.write_text(with_latest(PAGE.read_text(), bench, latest_tables(history.read_text())))


def latest_tables(history: str) -> str:
    """The newest table of each configuration (a table's heading without its date), in order of first run."""
    newest: dict[str, str] = {}
    for table in re.split(r"(?m)^(?=### )", history):
        if table.startswith("### "):
            newest[DATED.sub("", table.splitlines()[0])] = table.strip()
    return "\n\n".join(newest.values())


def with_latest(page: str, bench: str, tables: str) -> str:
    """The page with the block between the bench's markers replaced (markers added at the end if missing)."""
    start, end = f"<!-- latest {bench}: written by bench/{bench}.py -->", f"<!-- /latest {bench} -->"
    block = f"{start}\n\n{tables}\n\n{end}"
    if start in page and end in page:
        before, rest = page.split(start, 1)
        return before + block + rest.split(end, 1)[1]
    return page.rstrip("\n") + "\n\n" + block + "\n"
