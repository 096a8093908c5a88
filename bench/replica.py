"""Past one machine's process: two app processes behind a proxy, and a streaming read replica (docs/scaling.md).

    .venv/bin/python bench/replica.py                         # 20,000 signatures to start, 30 s of load
    .venv/bin/python bench/replica.py --signatures 100000 --duration 60 --signers 16 --readers 16

Run as root on a Debian PostgreSQL (pg_lsclusters): the bench starts a second cluster itself
(`pg_createcluster` on a free port, filled by `pg_basebackup -R` from the local cluster, so it streams the
primary's WAL as a hot standby), and stops and drops it at the end. The local cluster's pg_hba.conf gets one line
if it has none like it, `host replication all 127.0.0.1/32 trust` (the same trust its other local lines give),
and is reloaded. Then:
- two app processes on two ports, both with UNDERSIGNED_DATABASE_REPLICA_URL pointing at the standby, behind
  haproxy (Debian's, round robin per request);
- `--signers` clients sign one petition through the proxy, each signature from its own account, while
  `--readers` signed-out clients read the petition's tally report and signature log head (the replica's routes;
  the shared copies are off, so each read reaches a database);
- the petition's two thresholds sit a third and two thirds of the way into the run's expected signatures.
It records how the requests split between the processes, the transactions each cluster served for the bench's
database (pg_stat_database), and the consistency after the run: the counter against the signature rows and the
201 answers, each threshold fired once (its timeline events, counted), both processes' answer for the petition
(count and ETag: their page versions are shared through Redis), and the tally read through the replica once it has
caught up.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import redis
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.database import build_engine
from bench import petition_page
from bench.common import database_name, drop_database, free_port, machine, percentile, publish, serve
from bench.viral_petition import Person, Tally, count_signatures, people

DATABASE = "undersigned_replica_bench"
CLUSTER = "benchreplica"
REPLICATION_LINE = "host replication all 127.0.0.1/32 trust"
HAPROXY = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend undersigned
    bind 127.0.0.1:{port}
    default_backend apps
backend apps
    balance roundrobin
{servers}
"""


def _run(*command: str, user: str | None = None) -> str:
    if user:
        command = ("runuser", "-u", user, "--", *command)
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done.stdout


def primary_cluster() -> tuple[str, str, int]:
    """(version, name, port) of the local cluster on 5432."""
    for line in _run("pg_lsclusters", "--no-header").splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return version, name, int(port)
    raise RuntimeError("no PostgreSQL cluster on port 5432 (pg_lsclusters)")


def allow_replication(version: str, name: str) -> None:
    hba = Path(f"/etc/postgresql/{version}/{name}/pg_hba.conf")
    if not any(line.split()[:2] == ["host", "replication"] for line in hba.read_text().splitlines() if line.strip()):
        hba.write_text(hba.read_text().rstrip("\n") + f"\n{REPLICATION_LINE}\n")
        _run("pg_ctlcluster", version, name, "reload")


def start_standby(version: str, primary: str, port: int) -> Path:
    """A new cluster on `port`, a base backup of the primary streaming its WAL (a hot standby); its data folder."""
    drop_standby(version)
    _run("pg_createcluster", version, CLUSTER, "-p", str(port))
    # The standby lets in whoever the primary lets in (trust on localhost here), not a new cluster's passwords.
    shutil.copy(Path(f"/etc/postgresql/{version}/{primary}/pg_hba.conf"), f"/etc/postgresql/{version}/{CLUSTER}/")
    data = Path(f"/var/lib/postgresql/{version}/{CLUSTER}")
    for entry in data.iterdir():  # emptied for the backup; the folder stays, as pg_createcluster made it
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    # No replication slot: on a server where other databases are created and dropped meanwhile (test suites),
    # the checkpoints they force ended the backup's temporary slot, and the backup with it. Tried three times.
    for attempt in range(3):
        try:
            _run(
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                "5432",
                "-U",
                "postgres",
                "-D",
                str(data),
                "-R",
                "-X",
                "stream",
                "--no-slot",
                "-c",
                "fast",
                user="postgres",
            )
            break
        except RuntimeError:
            if attempt == 2:
                raise
    _run("pg_ctlcluster", version, CLUSTER, "start")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if _psql(port, "postgres", "SELECT pg_is_in_recovery()") == "t":
                return data
        except RuntimeError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the standby did not come up")


def drop_standby(version: str) -> None:
    if any(line.split()[1] == CLUSTER for line in _run("pg_lsclusters", "--no-header").splitlines() if line.strip()):
        _run("pg_dropcluster", version, CLUSTER, "--stop")


def _psql(port: int, database: str, query: str) -> str:
    return _run("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-Atc", query).strip()


def transactions(port: int, database: str) -> int:
    """Transactions the cluster on `port` has served for `database` (committed and rolled back)."""
    return int(
        _psql(
            port, "postgres", f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{database}'"
        )
        or 0
    )


def replay_lag_seconds(port: int) -> float:
    """Until the standby has replayed everything the primary has written (the primary is idle by then)."""
    target = _psql(5432, "postgres", "SELECT pg_current_wal_lsn()")
    started = time.monotonic()
    while time.monotonic() - started < 60:
        if _psql(port, "postgres", f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t":
            break
        time.sleep(0.05)
    return time.monotonic() - started


def arrange(args: argparse.Namespace) -> tuple[str, int, int, int]:
    """The petition (petition_page's builder), its thresholds a third and two thirds into the expected signatures."""
    url, ids, _session = petition_page.prepare(args.database, [args.signatures], args.comments)
    petition_id = ids[args.signatures]
    expected = args.duration * args.expected_rate
    response, escalation = args.signatures + expected // 3, args.signatures + 2 * expected // 3
    engine = build_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE petitions SET response_threshold = :response, escalation_threshold = :escalation, "
                "response_threshold_reached_at = NULL, escalation_threshold_reached_at = NULL, "
                "response_due_at = NULL WHERE id = :id"
            ),
            {"response": response, "escalation": escalation, "id": petition_id},
        )
    engine.dispose()
    return url, petition_id, response, escalation


async def load(args: argparse.Namespace, port: int, petition_id: int, signers: list[Person]) -> dict[str, Tally]:
    tallies = {name: Tally() for name in ("sign", "tally report", "log head")}
    deadline = time.perf_counter() + args.duration
    limits = httpx2.Limits(max_connections=args.signers + args.readers)
    async with httpx2.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30, trust_env=False
    ) as client:
        accounts = iter(signers)

        async def signer() -> None:
            for person in accounts:
                if time.perf_counter() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    response = await client.post(
                        f"/api/v1/petitions/{petition_id}/signature",
                        json={"visibility": "public"},
                        headers={"Cookie": person.cookie, "X-CSRF-Token": person.csrf},
                    )
                    tallies["sign"].add(started, response.status_code)
                except httpx2.HTTPError:
                    tallies["sign"].add(started, 0)

        async def reader(number: int) -> None:
            kind, path = (
                ("tally report", f"/api/v1/petitions/{petition_id}/tally")
                if number % 2 == 0
                else ("log head", f"/api/v1/petitions/{petition_id}/log")
            )
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    tallies[kind].add(started, (await client.get(path)).status_code)
                except httpx2.HTTPError:
                    tallies[kind].add(started, 0)

        await asyncio.gather(*(signer() for _ in range(args.signers)), *(reader(n) for n in range(args.readers)))
    return tallies


def requests_logged(log: Path) -> dict[str, int]:
    """Requests a process answered, by route, from its request log (JSON lines)."""
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if '"event": "request' not in line:
            continue
        entry = json.loads(line)
        counts[entry["route"]] = counts.get(entry["route"], 0) + int(entry.get("count", 1))
    return counts


def fired(url: str, petition_id: int) -> dict[str, int]:
    """Each threshold's traces: its timeline events and the notifications it queued."""
    engine = build_engine(url)
    with engine.connect() as connection:
        events = connection.execute(
            text(
                "SELECT kind, count(*) FROM petition_events WHERE petition_id = :id AND kind IN "
                "('response_threshold_reached', 'response_due', 'escalation_threshold_reached') GROUP BY kind"
            ),
            {"id": petition_id},
        ).all()
        notifications = connection.execute(
            text("SELECT template, count(*) FROM notifications WHERE petition_id = :id GROUP BY template"),
            {"id": petition_id},
        ).all()
    engine.dispose()
    return {f"event {kind}": n for kind, n in events} | {f"notification {template}": n for template, n in notifications}


def run(args: argparse.Namespace) -> dict[str, object]:
    version, primary_name, _ = primary_cluster()
    allow_replication(version, primary_name)
    url, petition_id, response_threshold, escalation_threshold = arrange(args)
    signers = people(url, int(args.duration * args.expected_rate * 2), "replicasigner")
    standby_port = free_port()
    database = database_name(args.database)
    start_standby(version, primary_name, standby_port)
    redis.Redis.from_url(args.redis_url).flushdb()
    replica_url = re.sub(r"127\.0\.0\.1:5432", f"127.0.0.1:{standby_port}", url)
    counter_before, rows_before = count_signatures(url, petition_id)
    result: dict[str, object] = {"thresholds": (response_threshold, escalation_threshold)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            ports, logs = [free_port(), free_port()], [Path(workdir) / "a.log", Path(workdir) / "b.log"]
            for port, log in zip(ports, logs, strict=True):
                processes.append(
                    serve(
                        url,
                        port,
                        log,
                        settings={
                            "database_replica_url": replica_url,
                            # Shared by both: rate limits and the petitions' page versions (the ETags of polls).
                            "redis_url": args.redis_url,
                            "anonymous_batch_seconds": "3600",
                            "shared_page_seconds": "0",
                            "tally_cache_seconds": "0",
                            "rate_limit_sign": "1000000/minute",
                        },
                        wait_seconds=120,
                    )
                )
            proxy_port = free_port()
            config = Path(workdir) / "haproxy.cfg"
            servers = "\n".join(f"    server app{i} 127.0.0.1:{port}" for i, port in enumerate(ports))
            config.write_text(HAPROXY.format(port=proxy_port, servers=servers))
            processes.append(subprocess.Popen(["haproxy", "-f", str(config), "-db"], stderr=subprocess.DEVNULL))
            time.sleep(1)
            result["load"] = os.getloadavg()[0]
            primary_before, standby_before = transactions(5432, database), transactions(standby_port, database)
            started = time.perf_counter()
            result["tallies"] = asyncio.run(load(args, proxy_port, petition_id, signers))
            result["elapsed"] = time.perf_counter() - started
            result["transactions"] = (
                transactions(5432, database) - primary_before,
                transactions(standby_port, database) - standby_before,
            )
            result["lag"] = replay_lag_seconds(standby_port)
            # Through the proxy, from the replica, once it has caught up: the tally report's count.
            with httpx2.Client(base_url=f"http://127.0.0.1:{proxy_port}", trust_env=False) as client:
                result["replica_count"] = client.get(f"/api/v1/petitions/{petition_id}/tally").json()["signature_count"]
            # Each process, asked directly: the same count, and the same ETag for the page's poll.
            answers = []
            for port in ports:
                with httpx2.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
                    answer = client.get(f"/api/v1/petitions/{petition_id}")
                    answers.append((answer.json()["signature_count"], answer.headers.get("etag")))
            result["answers"] = answers
            for process in processes:
                process.terminate()
                process.wait(30)
            result["split"] = [requests_logged(log) for log in logs]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        drop_standby(version)
    counter_after, rows_after = count_signatures(url, petition_id)
    result["counts"] = (counter_before, counter_after, rows_before, rows_after)
    result["fired"] = fired(url, petition_id)
    if not args.keep:
        drop_database(args.database)
    return result


def report(args: argparse.Namespace, result: dict[str, object]) -> str:
    tallies: dict[str, Tally] = result["tallies"]  # type: ignore[assignment]
    counter_before, counter_after, rows_before, rows_after = result["counts"]  # type: ignore[misc]
    signed = tallies["sign"].count(200, 201)
    primary_tx, standby_tx = result["transactions"]  # type: ignore[misc]
    split: list[dict[str, int]] = result["split"]  # type: ignore[assignment]
    traces: dict[str, int] = result["fired"]  # type: ignore[assignment]
    answers: list[tuple[int, str | None]] = result["answers"]  # type: ignore[assignment]
    response_threshold, escalation_threshold = result["thresholds"]  # type: ignore[misc]
    out = io.StringIO()
    out.write(
        f"### Two app processes behind haproxy, a streaming replica, {args.signatures:,} signatures to start "
        f"({datetime.now(UTC):%Y-%m-%d})\n\n"
    )
    out.write(
        f"Command: `.venv/bin/python bench/replica.py --signatures {args.signatures} --comments {args.comments} "
        f"--duration {args.duration} --signers {args.signers} --readers {args.readers} --expected-rate "
        f"{args.expected_rate}`\n\n"
    )
    out.write(
        f"Code: {petition_page.code_version()}. Machine: {machine()}; both clusters, both processes, haproxy and "
        f"the client on the same machine, so this shows the parts working together, not more throughput. "
        f"{args.duration} s of load; the 1-minute load average before it: {result['load']:.2f}.\n\n"
    )
    out.write("| requests | answered | per second | p50 ms | p99 ms | failed |\n|---|---|---|---|---|---|\n")
    for name, tally, good in (
        ("signatures (primary)", tallies["sign"], (200, 201)),
        ("tally report (replica)", tallies["tally report"], (200,)),
        ("log head (replica)", tallies["log head"], (200,)),
    ):
        answered = tally.count(*good)
        latencies = tally.latencies or [0.0]
        out.write(
            f"| {name} | {answered} | {answered / args.duration:.1f} | {percentile(latencies, 0.5) * 1000:.1f} | "
            f"{percentile(latencies, 0.99) * 1000:.1f} | {tally.failed(*good)} |\n"
        )
    routes = sorted({route for counts in split for route in counts if "signature" in route or "tally" in route})
    out.write("\n| route | process 1 | process 2 |\n|---|---|---|\n")
    for route in routes:
        out.write(f"| {route} | {split[0].get(route, 0)} | {split[1].get(route, 0)} |\n")
    exact = counter_after - counter_before == rows_after - rows_before == signed
    # A threshold the count reached fired exactly once; one it did not reach, never.
    expected = {
        "event response_threshold_reached": int(counter_after >= response_threshold),
        "event response_due": int(counter_after >= response_threshold),
        "event escalation_threshold_reached": int(counter_after >= escalation_threshold),
    }
    once = all(traces.get(kind, 0) == count for kind, count in expected.items()) and all(
        count <= 1 for count in traces.values()
    )
    reached = [f"{t:,}" for t in (response_threshold, escalation_threshold) if counter_after >= t] or ["none"]
    out.write(
        f"\nTransactions on the bench's database during the load: primary {primary_tx:,}, replica {standby_tx:,}. "
        f"The replica had replayed everything {result['lag']:.2f} s after the load stopped.\n\n"
        f"Counter exact: **{'yes' if exact else 'NO'}** (counter {counter_before:,} → {counter_after:,}, rows "
        f"{rows_before:,} → {rows_after:,}, {signed:,} answered 201); the tally report read from the replica "
        f"afterwards: {result['replica_count']:,}. Each process asked directly for the petition: "
        f"{'; '.join(f'count {count:,}, ETag {etag}' for count, etag in answers)} "
        f"({'the same' if len(set(answers)) == 1 else 'NOT the same'}). Thresholds at {response_threshold:,} and "
        f"{escalation_threshold:,} (reached: {', '.join(reached)}), each reached one fired once and no other: "
        f"**{'yes' if once else 'NO'}** "
        f"({', '.join(f'{kind}: {count}' for kind, count in sorted(traces.items()))}).\n"
    )
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=20_000, help="Signatures the petition starts with.")
    parser.add_argument("--comments", type=int, default=100, help="Comments in its discussion.")
    parser.add_argument("--duration", type=int, default=30, help="Seconds of load.")
    parser.add_argument("--signers", type=int, default=16, help="Concurrent signers.")
    parser.add_argument("--readers", type=int, default=16, help="Concurrent signed-out readers of the tally and log.")
    parser.add_argument(
        "--expected-rate",
        type=int,
        default=50,
        help="Signatures a second expected: sets the thresholds and how many accounts are made (twice as many).",
    )
    parser.add_argument("--database", default=DATABASE, help="Scratch PostgreSQL database (dropped at the end).")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/9",
        help="The Redis database both processes share (flushed first; the test suite leaves 9 free).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database at the end.")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()
    publish(report(args, run(args)), bench="replica", write=not args.no_write)


if __name__ == "__main__":
    main()
