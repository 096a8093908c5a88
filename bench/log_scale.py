"""The signature log's stored Merkle tree at 1,000,000 entries: appending, and proofs read from PostgreSQL.

    .venv/bin/python bench/log_scale.py                          # 1,000,000 entries
    .venv/bin/python bench/log_scale.py --entries 100000 --no-write

Builds one petition's log in batches of 10,000, then times appending a batch of 1,000 (target < 1 s), and
inclusion and consistency proofs (target < 10 ms each): built in the service, and served over HTTP by a
running server (one process, one request at a time). Prints a table and records it (bench/results/, docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import merkle
from app.core.clock import SystemClock
from app.core.database import build_engine, build_sessionmaker
from app.core.runtime import build_runtime
from app.core.settings import Settings
from app.core.templating import build_templates
from app.log import service as signature_log
from app.log import tree
from app.models.accounts import User
from app.petitions import service as petitions
from app.petitions.schemas import PetitionDraft
from bench.common import (
    SECRET,
    drop_database,
    free_port,
    machine,
    percentile,
    publish,
    scratch_database,
    serve,
)

DATABASE = "undersigned_log_bench"
FLOOR: list[float] = []  # /healthz on the same server and client: what any request costs here
READERS = 1  # latency of one request at a time; several readers measure queueing on one process


def entry(number: int) -> bytes:
    return f'{{"kind":"signature","visibility":"organizers","commitment":"{number:064x}"}}'.encode()


def serve_proofs(url: str, petition_id: int, size: int) -> tuple[list[float], list[float]]:
    """Time the proofs API on a running server: READERS at once, 400 requests of each kind."""
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = serve(url, port, Path(workdir) / "server.log", settings={"anonymous_batch_seconds": "3600"})
        try:
            return asyncio.run(_time_proofs(f"http://127.0.0.1:{port}", petition_id, size))
        finally:
            server.terminate()
            server.wait(10)


async def _time_proofs(base_url: str, petition_id: int, size: int) -> tuple[list[float], list[float]]:
    rng = random.Random(6962)
    base = f"/api/v1/petitions/{petition_id}/log"
    paths = {
        "inclusion": [f"{base}/inclusion?index={rng.randrange(size)}&size={size}" for _ in range(400)],
        "consistency": [f"{base}/consistency?old={rng.randrange(1, size)}&new={size}" for _ in range(400)],
        "floor": ["/healthz"] * 400,
    }
    results: dict[str, list[float]] = {"inclusion": [], "consistency": [], "floor": []}
    async with httpx2.AsyncClient(base_url=base_url, timeout=30) as client:
        for path in paths["inclusion"][:20]:
            (await client.get(path)).raise_for_status()  # warm

        async def reader(pending: list[str], timings: list[float]) -> None:
            # The queue and the list it times into are arguments, not names from the loop below: a reader still
            # running when the loop moved on would otherwise drain the next kind's queue into the next kind's list.
            while pending:
                path = pending.pop()
                started = time.perf_counter()
                response = await client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        for kind, queue in paths.items():
            pending = list(queue)
            await asyncio.gather(*(reader(pending, results[kind]) for _ in range(READERS)))
    global FLOOR
    FLOOR = results["floor"]
    return results["inclusion"], results["consistency"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()

    url = scratch_database(DATABASE)
    settings = Settings(environment="test", database_url=url, secret_key=SECRET, sponsors_required=0)
    rt = build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)
    engine = build_engine(url)
    sessions = build_sessionmaker(engine)
    now = datetime.now(UTC)
    with sessions.begin() as db:
        creator = User(
            email="creator@example.org", display_name="Creator", email_verified_at=now, created_at=now, roles=[]
        )
        db.add(creator)
        db.flush()
        petition = petitions.create_draft(
            db=db,
            rt=rt,
            creator=creator,
            form=PetitionDraft(title="A long log", ask="Count.", background="Measured.", category="other"),
        )
        petition_id = petition.id

    started = time.perf_counter()
    size = 0
    while size < args.entries:
        count = min(10_000, args.entries - size)
        with sessions.begin() as db:
            tree.append(db, petition_id, [entry(size + i) for i in range(count)])
        size += count
    build_seconds = time.perf_counter() - started
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    print(f"built {size:,} entries in {build_seconds:.0f} s", file=sys.stderr)

    append_times = []
    for _ in range(5):
        batch = [entry(size + i) for i in range(1_000)]
        started = time.perf_counter()
        with sessions.begin() as db:
            _, root = tree.append(db, petition_id, batch)
        append_times.append(time.perf_counter() - started)
        size += 1_000

    rng = random.Random(9162)
    inclusion, consistency = [], []
    with sessions() as db:
        for _ in range(200):
            index = rng.randrange(size)
            started = time.perf_counter()
            proof = tree.inclusion_proof(db, petition_id, index, size)
            inclusion.append((time.perf_counter() - started) * 1000)
            merkle.verify_inclusion(index, size, merkle.leaf_hash(entry(index)), proof, root)
            old = rng.randrange(1, size)
            started = time.perf_counter()
            proof = tree.consistency_proof(db, petition_id, old, size)
            consistency.append((time.perf_counter() - started) * 1000)
            merkle.verify_consistency(old, size, tree.root_at(db, petition_id, old), root, proof)
        # Readable through the API: only petitions that opened are public (this one's entries are synthetic), and
        # only trees a checkpoint signed are proven, as the batch that appends entries signs one over them.
        db.execute(text("UPDATE petitions SET state = 'open' WHERE id = :id"), {"id": petition_id})
        signature_log._checkpoint(db, rt, petition_id, rt.clock.now())
        db.commit()
    engine.dispose()
    served_inclusion, served_consistency = serve_proofs(url, petition_id, size)
    drop_database(DATABASE)

    report = io.StringIO()
    report.write(f"### Signature log at {size:,} entries, PostgreSQL ({datetime.now(UTC):%Y-%m-%d})\n\n")
    report.write(f"Command: `.venv/bin/python bench/log_scale.py --entries {args.entries}`\n\n")
    report.write(
        f"Machine: {machine()}; proofs built in the service from rows read by key "
        "(one connection, no HTTP); every proof was verified.\n\n"
    )
    report.write("| measure | result | target |\n|---|---|---|\n")
    report.write(f"| building the log, batches of 10,000 | {build_seconds:.0f} s | |\n")
    worst = max(append_times)
    report.write(
        f"| appending a batch of 1,000 at {args.entries:,} | median {statistics.median(append_times):.2f} s, "
        f"worst {worst:.2f} s | {'met' if worst < 1 else 'NOT met'} (< 1 s) |\n"
    )
    for label, times in (
        ("inclusion proof, in the service", inclusion),
        ("consistency proof, in the service", consistency),
        ("inclusion proof, served over HTTP", served_inclusion),
        ("consistency proof, served over HTTP", served_consistency),
    ):
        if not times:
            continue
        p99 = percentile(times, 0.99)
        report.write(
            f"| {label} | p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms | "
            f"{'met' if p99 < 10 else 'NOT met'} (< 10 ms) |\n"
        )
    if FLOOR:
        report.write(
            f"| for comparison: `/healthz` (no database) on the same server and client | p50 "
            f"{statistics.median(FLOOR):.1f} ms, p99 {percentile(FLOOR, 0.99):.1f} ms | |\n"
        )
    publish(report.getvalue(), bench="log_scale", write=not args.no_write)


if __name__ == "__main__":
    main()
