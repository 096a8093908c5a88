"""Sign throughput: the full HTTP sign path against a bare insert endpoint, in the same run.

    .venv/bin/python bench/sign_throughput.py                      # PostgreSQL, 2 workers, 5 rounds of 1,000
    .venv/bin/python bench/sign_throughput.py --workers 4 --signatures 20000
    .venv/bin/python bench/sign_throughput.py --database sqlite --workers 1

Each signature comes from its own account (sessions made up front), all on one petition: the busiest case,
where every signature updates the same counter row. Prints a table and records it (bench/results/, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import migrations
from app.core.clock import SystemClock
from app.core.database import build_engine, build_sessionmaker
from app.core.runtime import build_runtime
from app.core.security import Keyring, new_token, token_digest
from app.core.settings import Settings
from app.core.templating import build_templates
from app.models.accounts import Role, RoleGrant, User, UserSession, account_values
from app.petitions import service as petitions
from app.petitions.schemas import PetitionDraft
from bench.bare_insert import metadata as bare_metadata
from bench.common import database_name, publish, serve

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = database_name("undersigned_bench")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    admin = build_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    return str(make_url(POSTGRES_ADMIN).set(database=DATABASE).render_as_string(hide_password=False))


def arrange(url: str, accounts: int) -> tuple[list[int], list[tuple[str, str]]]:
    """Migrate, then create two open petitions (one measured, one to warm up on) and `accounts` signed-in
    workers; returns the petitions' ids and the workers' cookies."""
    migrations.upgrade(url)
    engine = build_engine(url)
    bare_metadata.create_all(engine)
    settings = Settings(environment="test", database_url=url, secret_key=SECRET, sponsors_required=1)
    rt = build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)
    now = datetime.now(UTC)
    sessions = build_sessionmaker(engine)
    with sessions.begin() as db:
        db.execute(
            insert(User),
            [
                account_values(
                    email=f"bench{i}@example.org",
                    display_name=f"Bench Signer {i}",
                    email_verified_at=now,
                    created_at=now,
                )
                for i in range(accounts + 2)
            ],
        )
        users = {user.email: user for user in db.query(User).all()}
        creator, moderator = users["bench0@example.org"], users["bench1@example.org"]
        db.add(RoleGrant(user_id=moderator.id, role=Role.moderator, granted_at=now))
        db.flush()
        for user in (creator, moderator):
            db.refresh(user, attribute_names=["roles"])
        petition_ids = []
        for title in ("Benchmark petition", "Warm-up petition"):
            petition = petitions.create_draft(
                db=db,
                rt=rt,
                creator=creator,
                form=PetitionDraft(title=title, ask="Count every signature.", background="Measured.", category="other"),
            )
            petitions.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=creator)
            petitions.sponsor(
                db=db, rt=rt, petition=petition, token=petitions.sponsor_token(rt=rt, petition=petition), user=moderator
            )
            petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
            petition_ids.append(petition.id)
        keyring = Keyring(SECRET)
        cookies = []
        rows = []
        for i in range(2, accounts + 2):
            session_id, seed = new_token(), new_token()
            rows.append(
                {
                    "id_digest": token_digest(session_id),
                    "user_id": users[f"bench{i}@example.org"].id,
                    "created_at": now,
                    "expires_at": now.replace(year=now.year + 1),
                }
            )
            cookies.append((f"undersigned_session={session_id}; undersigned_csrf={seed}", keyring.csrf_token(seed)))
        db.execute(insert(UserSession), rows)
    engine.dispose()
    return petition_ids, cookies


async def drive(
    port: int, requests: list[tuple[str, dict[str, str], object]], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[str, dict[str, str], object]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60, trust_env=False
    ) as client:

        async def worker() -> None:
            while True:
                try:
                    path, headers, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.post(path, headers=headers, json=body)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, statuses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace) -> dict[str, object]:
    """Both servers up side by side; rounds alternate between them so that a noisy moment of the machine
    falls on both paths, and the ratio is the median of the rounds' ratios."""
    with tempfile.TemporaryDirectory() as workdir:
        url = prepare_database(args.database, Path(workdir))
        (petition_id, warmup_petition_id), cookies = arrange(url, args.signatures)
        per_round = args.signatures // args.rounds
        paths = {
            "bare insert": ("bench.bare_insert:app", [(f"/insert/{i}", {}, None) for i in range(args.signatures)]),
            "sign (full HTTP path)": (
                "app.asgi:app",
                [
                    (
                        f"/api/v1/petitions/{petition_id}/signature",
                        {"Cookie": cookie, "X-CSRF-Token": token},
                        {"visibility": "public" if i % 2 else "organizers"},
                    )
                    for i, (cookie, token) in enumerate(cookies)
                ],
            ),
        }
        servers, ports = [], {}
        try:
            for name, (target, _requests) in paths.items():
                ports[name] = free_port()
                servers.append(
                    serve(
                        url,
                        ports[name],
                        Path(workdir) / "server.log",
                        workers=args.workers,
                        target=target,
                        settings={"rate_limit_sign": "100000/minute"},
                        environ={"BENCH_DATABASE_URL": url},
                    )
                )
            warmup = min(200, per_round // 5)
            asyncio.run(drive(ports["bare insert"], [("/insert/0", {}, None)] * warmup, args.concurrency))
            # The sign path warms up on the other petition: every measured signature is a first one.
            asyncio.run(
                drive(
                    ports["sign (full HTTP path)"],
                    [
                        (
                            f"/api/v1/petitions/{warmup_petition_id}/signature",
                            {"Cookie": cookie, "X-CSRF-Token": token},
                            {"visibility": "public"},
                        )
                        for cookie, token in cookies[:warmup]
                    ],
                    args.concurrency,
                )
            )
            rounds: dict[str, list[float]] = {name: [] for name in paths}
            latencies: dict[str, list[float]] = {name: [] for name in paths}
            statuses: dict[str, dict[int, int]] = {name: {} for name in paths}
            for number in range(args.rounds):
                order = list(paths) if number % 2 == 0 else list(reversed(paths))
                for name in order:
                    chunk = paths[name][1][number * per_round : (number + 1) * per_round]
                    elapsed, round_latencies, round_statuses = asyncio.run(drive(ports[name], chunk, args.concurrency))
                    rounds[name].append(len(chunk) / elapsed)
                    latencies[name] += round_latencies
                    for code, count in round_statuses.items():
                        statuses[name][code] = statuses[name].get(code, 0) + count
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
        if args.database == "postgresql":
            admin = build_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            admin.dispose()
    bare, sign = rounds["bare insert"], rounds["sign (full HTTP path)"]
    return {
        "paths": [
            {
                "name": name,
                "requests": sum(statuses[name].values()),
                "per_second": statistics.median(rounds[name]),
                "rounds": rounds[name],
                "p50_ms": percentile(latencies[name], 0.50) * 1000,
                "p99_ms": percentile(latencies[name], 0.99) * 1000,
                "statuses": statuses[name],
            }
            for name in paths
        ],
        "ratio": statistics.median(s / b for s, b in zip(sign, bare, strict=True)),
    }


def report(args: argparse.Namespace, results: dict[str, object]) -> str:
    lines = [
        (
            f"### Sign throughput: {args.database}, {args.workers} worker{'s' if args.workers != 1 else ''}, "
            f"{args.concurrency} concurrent clients ({datetime.now(UTC):%Y-%m-%d})"
        ),
        "",
        (
            f"Command: `.venv/bin/python bench/sign_throughput.py --database {args.database} --workers {args.workers} "
            f"--signatures {args.signatures} --concurrency {args.concurrency} --rounds {args.rounds}`"
        ),
        "",
        (
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; the load generator runs on the same machine."
        ),
        "",
        "| path | requests | per second (median of rounds) | rounds | p50 ms | p99 ms | statuses |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results["paths"]:  # type: ignore[attr-defined]
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(result["statuses"].items()))
        each = " / ".join(f"{rate:.0f}" for rate in result["rounds"])
        lines.append(
            f"| {result['name']} | {result['requests']} | {result['per_second']:.0f} | {each} | "
            f"{result['p50_ms']:.1f} | {result['p99_ms']:.1f} | {statuses} |"
        )
    lines += [
        "",
        f"Ratio sign / bare insert (median of the rounds' ratios): **{results['ratio']:.2f}** (target ≥ 0.5).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--signatures", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="Alternating rounds per path (the median is reported).")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()
    results = run(args)
    publish(report(args, results), bench="sign_throughput", write=not args.no_write)


if __name__ == "__main__":
    main()
