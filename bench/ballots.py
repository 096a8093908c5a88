"""Ballots (issue #25): answers per second through the cookie-less path, and what a result costs at 100,000 answers.

    .venv/bin/python bench/ballots.py                                   # full size
    .venv/bin/python bench/ballots.py --answers 2000 --counted 10000 --no-write

Two parts, each on a scratch PostgreSQL database and a real server process (uvicorn, the app as deployed):

1. Answers. A members' poll with its own RSA blind-signing key; `--answers` credentials are made before the clock
   starts with the real flow (the wallet blinds a message, the poll's key blind-signs it as the bundle does, the
   wallet finalizes and checks it: RFC 9474). Then `--clients` concurrent clients send one answer per credential to
   `POST /api/v1/ballots/{id}/answers` without cookies, as the wallet does. The server runs with batching on
   (one batch an hour), so every answer waits in its memory and the figure is the accepting path alone: the
   signature check, the ballot's state and the 202. The batch is then written by the jobs' own code
   (`_write_anonymous_batch`, which the batching loop calls and the server calls once more when it stops): the
   server is stopped and the time from the stop to its exit is the batch, each answer a row and a leaf of the
   poll's log, then a signed checkpoint. The answers counted are read back to check none was lost.
2. Results. One closed poll per kind (single of 4 options, multiple up to 3 of 6, the agreement scale, ranked up
   to 5 of 8), each with `--counted` counted answers written straight into its table as a batch writes them
   (random choices; the result reads only the counted rows, not their signatures), then reads of
   `GET /api/v1/ballots/{id}/results` one after the other: the first one counts (time and the server's CPU,
   user and system time from /proc), the `--requests` after it find the result kept for that log head
   (app/ballots/result_cache.py): their median and p95 time and CPU per read.

Prints a table and records it (bench/results/ballots.md, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
from sqlalchemy import insert, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.core import b64url, blindrsa
from app.core.clock import SystemClock, to_the_hour
from app.core.database import build_engine, build_sessionmaker
from app.core.runtime import Runtime, build_runtime
from app.core.settings import Settings
from app.core.templating import build_templates
from app.models.accounts import Role, RoleGrant, User
from app.models.ballots import Ballot, BallotAnswer, BallotAudience, BallotKind
from bench.common import SECRET, drop_database, free_port, machine, percentile, publish, scratch_database, serve

DATABASE = "undersigned_ballots_bench"
KINDS: dict[BallotKind, tuple[list[str], int | None]] = {
    BallotKind.single: (["Monday", "Tuesday", "Wednesday", "Thursday"], None),
    BallotKind.multiple: ([f"Option {n}" for n in range(1, 7)], 3),
    BallotKind.scale: ([], None),
    BallotKind.ranked: ([f"Candidate {n}" for n in range(1, 9)], 5),
}


def runtime(url: str, bits: int) -> Runtime:
    settings = Settings(environment="test", database_url=url, secret_key=SECRET, blind_key_bits=bits)
    return build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)


def responder(db) -> User:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    user = User(
        email=f"responder-{secrets.token_hex(4)}@example.org",
        display_name="Responder",
        email_verified_at=now,
        created_at=now,
        roles=[RoleGrant(role=Role.responder, granted_at=now)],
    )
    db.add(user)
    db.flush()
    return user


def new_ballot(db, rt: Runtime, author: User, kind: BallotKind) -> Ballot:  # type: ignore[no-untyped-def]
    options, max_choices = KINDS[kind]
    return ballots.create(
        db,
        rt,
        actor=author,
        petition=None,
        kind=kind,
        question=f"A {kind.value} question for the bench",
        options=options,
        max_choices=max_choices,
        audience=BallotAudience.members,
        opens_at=None,
        closes_at=datetime.now(UTC) + timedelta(days=7),
        results_live=False,
        min_answers=None,
    )


def credentials(rt: Runtime, ballot: Ballot, count: int) -> tuple[list[tuple[bytes, bytes]], float]:
    """`count` credentials by the real blind-signing flow, and the seconds it took (not part of any figure)."""
    public = blindrsa.PublicKey.from_spki(ballot.spki)
    signer = ballots.signer_for(rt=rt, ballot=ballot)
    made = []
    started = time.perf_counter()
    for _ in range(count):
        message = blindrsa.prepare(secrets.token_bytes(32))
        blinded = blindrsa.blind(public, message)
        reply = signer.blind_sign(blinded.blinded_msg)
        made.append((message, blindrsa.finalize(public, message, reply, blinded.inv)))
    return made, time.perf_counter() - started


def random_choice(kind: BallotKind, picker: random.Random) -> list[int]:
    options, max_choices = KINDS[kind]
    count = len(options) or 5
    if kind is BallotKind.multiple:
        return sorted(picker.sample(range(count), picker.randint(1, max_choices or 1)))
    if kind is BallotKind.ranked:
        return picker.sample(range(count), picker.randint(1, max_choices or 1))
    return [picker.randrange(count)]


def server_pids(root: int) -> list[int]:
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        queue += [int(child) for child in children]
    return found


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# -- part 1: answers ------------------------------------------------------------------------------------------


async def send_answers(
    base_url: str, ballot_id: int, made: list[tuple[bytes, bytes]], clients: int
) -> tuple[int, float, list[float]]:
    picker = random.Random(7)
    bodies = [
        {"message": b64url.encode(message), "signature": b64url.encode(signature), "choice": [picker.randrange(4)]}
        for message, signature in made
    ]
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    accepted = 0
    path = f"/api/v1/ballots/{ballot_id}/answers"
    async with httpx2.AsyncClient(base_url=base_url, timeout=120) as client:

        async def one_client() -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(path, json=body)  # no cookie: the client holds none
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 202:
                    raise RuntimeError(f"answer refused: {response.status_code} {response.text}")
                accepted += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return accepted, time.perf_counter() - started, latencies


def answers_part(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    url = scratch_database(DATABASE)
    rt = runtime(url, args.bits)
    engine = build_engine(url)
    sessions = build_sessionmaker(engine)
    with sessions.begin() as db:
        ballot = new_ballot(db, rt, responder(db), BallotKind.single)
        ballot_id = ballot.id
    with sessions.begin() as db:
        ballot = db.get_one(Ballot, ballot_id)
        made, making = credentials(rt, ballot, args.answers)
        ballot.credentials_issued = len(made)
    print(f"{len(made)} credentials made in {making:.1f} s (before the clock starts)", file=sys.stderr)
    port = free_port()
    server = serve(
        url,
        port,
        workdir / "answers.log",
        settings={"anonymous_batch_seconds": "3600", "blind_key_bits": str(args.bits)},
    )
    try:
        accepted, seconds, latencies = asyncio.run(
            send_answers(f"http://127.0.0.1:{port}", ballot_id, made, args.clients)
        )
        with sessions() as db:
            written_before = db.scalar(select(Ballot.answers_counted).where(Ballot.id == ballot_id))
        # The batch: the server writes what it accepted when it stops, with the jobs' own function.
        stopping = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(600)
        batch_seconds = time.perf_counter() - stopping
    finally:
        if server.poll() is None:
            server.kill()
    with sessions() as db:
        counted = db.scalar(select(Ballot.answers_counted).where(Ballot.id == ballot_id)) or 0
        leaves = ballot_log.size(db, ballot_id)
    engine.dispose()
    drop_database(DATABASE)
    if written_before:
        raise RuntimeError(f"{written_before} answers were written before the batch: the figure would be wrong")
    if counted != accepted or leaves != accepted + 1:  # entry 0 is the ballot's own
        raise RuntimeError(f"{accepted} answers accepted but {counted} counted, {leaves} leaves: answers were lost")
    latencies.sort()
    return {
        "accepted": accepted,
        "accept_rate": accepted / seconds,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "batch_seconds": batch_seconds,
        "write_rate": counted / batch_seconds,
    }


# -- part 2: results ------------------------------------------------------------------------------------------


def fill(db, ballot: Ballot, count: int, picker: random.Random) -> None:  # type: ignore[no-untyped-def]
    """`count` counted answers, as a batch writes them (random credentials: the result never reads signatures)."""
    hour = to_the_hour(datetime.now(UTC) - timedelta(hours=3))
    for start in range(0, count, 10_000):
        db.execute(
            insert(BallotAnswer),
            [
                {
                    "id": secrets.token_hex(16),
                    "ballot_id": ballot.id,
                    "credential": secrets.token_hex(32),
                    "message": b"m",
                    "signature": b"s",
                    "revision": 1,
                    "choice": ballot_log.canonical_choice(random_choice(ballot.kind, picker)),
                    "counted_hour": hour,
                    "superseded": False,
                    "log_index": start + i + 1,
                }
                for i in range(min(10_000, count - start))
            ],
        )
    # Closed two hours ago, past its last batch, so its result is shown.
    now = datetime.now(UTC)
    db.execute(
        update(Ballot)
        .where(Ballot.id == ballot.id)
        .values(
            opens_at=to_the_hour(now) - timedelta(hours=5),
            closes_at=to_the_hour(now) - timedelta(hours=2),
            answers_counted=count,
            credentials_issued=count,
        )
    )


def results_part(args: argparse.Namespace, workdir: Path) -> dict[BallotKind, dict[str, float]]:
    url = scratch_database(DATABASE)
    rt = runtime(url, 2048)  # the result reads no key: a smaller one is made faster
    engine = build_engine(url)
    sessions = build_sessionmaker(engine)
    picker = random.Random(25)
    ids: dict[BallotKind, int] = {}
    with sessions.begin() as db:
        author = responder(db)
        for kind in KINDS:
            ids[kind] = new_ballot(db, rt, author, kind).id
    for ballot_id in ids.values():
        with sessions.begin() as db:
            fill(db, db.get_one(Ballot, ballot_id), args.counted, picker)
    port = free_port()
    server = serve(url, port, workdir / "results.log", settings={"anonymous_batch_seconds": "3600"})
    found: dict[BallotKind, dict[str, float]] = {}
    try:
        pids = server_pids(server.pid)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for ballot_id in ids.values():  # the process warmed up (imports, connections) on the polls themselves
                client.get(f"/api/v1/ballots/{ballot_id}").raise_for_status()
            for kind, ballot_id in ids.items():
                path = f"/api/v1/ballots/{ballot_id}/results"
                # The first read counts (the result of this log head is kept after it); the others read it kept.
                cpu_before = cpu_seconds(pids)
                started = time.perf_counter()
                first = client.get(path)
                first_ms = (time.perf_counter() - started) * 1000
                first_cpu = cpu_seconds(pids) - cpu_before
                body = first.json()
                if first.status_code != 200 or body["status"] != "shown" or body["answers"] != args.counted:
                    raise RuntimeError(f"{kind.value}: the result is not shown as expected: {first.text[:300]}")
                times = []
                cpu_before = cpu_seconds(pids)
                for _ in range(args.requests):
                    started = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                cpu = cpu_seconds(pids) - cpu_before
                found[kind] = {
                    "first_ms": first_ms,
                    "first_cpu_ms": first_cpu * 1000,
                    "p50": statistics.median(times),
                    "p95": percentile(times, 0.95),
                    "cpu_ms": cpu * 1000 / args.requests,
                    "rounds": float(len(body["rounds"])),
                }
    finally:
        server.terminate()
        server.wait(30)
    engine.dispose()
    drop_database(DATABASE)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=20_000, help="Answers sent, one per credential.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent cookie-less clients.")
    parser.add_argument("--bits", type=int, default=3072, help="The poll key's size, as deployed.")
    parser.add_argument("--counted", type=int, default=100_000, help="Counted answers per kind for the results.")
    parser.add_argument("--requests", type=int, default=20, help="Reads of each result.")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        answered = answers_part(args, workdir)
        results = results_part(args, workdir)

    report = io.StringIO()
    report.write(
        f"### Ballots, {args.answers:,} answers, results at {args.counted:,} ({datetime.now(UTC):%Y-%m-%d})\n\n"
    )
    report.write(
        f"Command: `.venv/bin/python bench/ballots.py --answers {args.answers} --clients {args.clients} "
        f"--bits {args.bits} --counted {args.counted} --requests {args.requests}`\n\n"
    )
    report.write(
        f"Machine: {machine()}, PostgreSQL and the clients on the same machine; one server process. Credentials "
        "made by the blind-signing flow before the clock starts; answers sent without cookies; the batch written "
        "by the jobs' code when the server stops.\n\n"
    )
    report.write("| measure | result |\n|---|---|\n")
    report.write(
        f"| answers accepted (202, waiting for the batch), {args.clients} clients | "
        f"{answered['accept_rate']:.0f} answers/s (p50 {answered['p50']:.1f} ms, p99 {answered['p99']:.1f} ms) |\n"
    )
    report.write(
        f"| the batch: {answered['accepted']:.0f} answers written, leaves appended, checkpoint signed | "
        f"{answered['batch_seconds']:.1f} s, {answered['write_rate']:.0f} answers/s |\n"
    )
    for kind, row in results.items():
        rounds = f", {row['rounds']:.0f} rounds" if kind is BallotKind.ranked else ""
        report.write(
            f"| `GET /api/v1/ballots/{{id}}/results`, {kind.value}, {args.counted:,} answers{rounds} | "
            f"first read (counting): {row['first_ms']:.0f} ms, server CPU {row['first_cpu_ms']:.0f} ms; then "
            f"p50 {row['p50']:.1f} ms, p95 {row['p95']:.1f} ms, server CPU {row['cpu_ms']:.1f} ms a read |\n"
        )
    publish(report.getvalue(), bench="ballots", write=not args.no_write)


if __name__ == "__main__":
    main()
