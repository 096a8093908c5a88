"""Discussion pages at scale: the first page of comments costs the same at 10, 1,000 and 10,000 comments.

    .venv/bin/python bench/comment_pages.py                       # PostgreSQL, 16 concurrent readers
    .venv/bin/python bench/comment_pages.py --requests 200 --readers 4 --no-write

Three open petitions carry 10, 1,000 and 10,000 comments (four in five top-level, the rest replies up to the
deepest level, a few with endorsements). One server process; readers signed out. For each petition it times
the petition page (which shows the top concerns and the first page of the discussion), the discussion page
ordered by newest, and the comments API; prints p50/p99 and records the table (bench/results/, docs/benchmarks.md).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
from sqlalchemy import insert, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.comments.service import rank
from app.core.clock import SystemClock
from app.core.database import build_engine, build_sessionmaker
from app.core.markdown import render_comment
from app.core.runtime import build_runtime
from app.core.settings import Settings
from app.core.templating import build_templates
from app.models.accounts import Role, RoleGrant, User
from app.models.comments import Comment
from app.models.petitions import Petition
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

DATABASE = "undersigned_comments_bench"
SIZES = (10, 1_000, 10_000)
BODY = (
    "The recordings capture *private* conversations, and nobody asked us. See [the policy]"
    "(https://intranet.example/policy) and:\n\n- what is kept\n- for how long\n- who reads it"
)


def prepare() -> tuple[str, dict[int, int]]:
    url = scratch_database(DATABASE)
    settings = Settings(environment="test", database_url=url, secret_key=SECRET, sponsors_required=1)
    rt = build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)
    engine = build_engine(url)
    now = datetime.now(UTC)
    html = render_comment(BODY)
    random.seed(7)
    petition_ids: dict[int, int] = {}
    with build_sessionmaker(engine).begin() as db:
        authors = [
            User(
                email=f"author{i}@example.org",
                display_name=f"Author {i}",
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
            for i in range(50)
        ]
        moderator = User(
            email="moderator@example.org",
            display_name="Moderator",
            email_verified_at=now,
            created_at=now,
            roles=[RoleGrant(role=Role.moderator, granted_at=now)],
        )
        db.add_all([*authors, moderator])
        db.flush()
        for size in SIZES:
            petition = petitions.create_draft(
                db=db,
                rt=rt,
                creator=authors[0],
                form=PetitionDraft(
                    title=f"A discussion of {size:,} comments", ask="Read it.", background="Measured.", category="other"
                ),
            )
            petitions.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=authors[0])
            petitions.sponsor(
                db=db, rt=rt, petition=petition, token=petitions.sponsor_token(rt=rt, petition=petition), user=moderator
            )
            petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
            petition_ids[size] = petition.id
            _comments(db, petition.id, size, authors, html, now)
    with engine.connect() as connection:  # what autovacuum would do after a day of comments
        connection.execute(text("ANALYZE"))
        connection.commit()
    engine.dispose()
    return url, petition_ids


def _comments(db, petition_id: int, size: int, authors: list[User], html: str, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """Inserted in id order, as they would be posted: each reply after its parent."""
    next_id = (db.scalar(text("SELECT coalesce(max(id), 0) FROM comments")) or 0) + 1
    rows: list[dict[str, object]] = []
    depth_of: dict[int, int] = {}
    replies: dict[int, int] = {}
    start = now - timedelta(days=20)
    for number in range(size):
        comment_id = next_id + number
        created = start + timedelta(seconds=number * 1_728_000 / size)
        parent = None
        if rows and random.random() < 0.2:
            candidate = random.choice(rows[-200:])
            parent = int(candidate["id"])  # type: ignore[call-overload]
            if depth_of[parent] == 4:
                parent = int(candidate["parent_id"])  # type: ignore[call-overload]
        depth = depth_of[parent] + 1 if parent else 1
        depth_of[comment_id] = depth
        if parent:
            replies[parent] = replies.get(parent, 0) + 1
        endorsements = random.choice((0, 0, 0, 1, 2, 5, 12))
        rows.append(
            {
                "id": comment_id,
                "petition_id": petition_id,
                "parent_id": parent,
                "quoted_id": None,
                "depth": depth,
                "author_id": random.choice(authors).id,
                "pseudonym": None,
                "author_proof": None,
                "body": BODY,
                "body_html": html,
                "state": "visible",
                "hidden_reason": None,
                "rank": rank(endorsements=endorsements, created_at=created),
                "endorsement_count": endorsements,
                "reply_count": 0,
                "flags_since_review": 0,
                "review": "none",
                "created_at": created,
                "edited_at": None,
            }
        )
    for row in rows:
        row["reply_count"] = replies.get(int(row["id"]), 0)  # type: ignore[call-overload]
    for chunk in range(0, len(rows), 5_000):
        db.execute(insert(Comment), rows[chunk : chunk + 5_000])
    db.execute(update(Petition).where(Petition.id == petition_id).values(comment_count=size))
    db.execute(text("SELECT setval(pg_get_serial_sequence('comments', 'id'), (SELECT max(id) FROM comments))"))


async def measure(base_url: str, path: str, requests: int, readers: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(requests):
        queue.put_nowait(number)
    async with httpx2.AsyncClient(base_url=base_url, timeout=30) as client:
        for _ in range(20):  # warm: templates, statements, the database's caches
            (await client.get(path)).raise_for_status()

        async def reader() -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(reader() for _ in range(readers)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000, help="Requests per page and size.")
    parser.add_argument("--readers", type=int, default=16, help="Concurrent readers.")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()
    url, petition_ids = prepare()
    port = free_port()
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        server = serve(url, port, Path(workdir) / "server.log")
        try:
            for size, petition_id in petition_ids.items():
                for label, path in (
                    ("petition page", f"/petitions/{petition_id}"),
                    ("discussion, newest", f"/petitions/{petition_id}/comments?sort=newest"),
                    ("comments API", f"/api/v1/petitions/{petition_id}/comments"),
                ):
                    latencies = asyncio.run(measure(f"http://127.0.0.1:{port}", path, args.requests, args.readers))
                    row = (
                        size,
                        label,
                        statistics.median(latencies),
                        percentile(latencies, 0.99),
                        len(latencies) / (sum(latencies) / 1000 / args.readers),
                    )
                    results.append(row)
                    print(f"{size:>6} {label:<20} p50 {row[2]:6.1f} ms  p99 {row[3]:6.1f} ms", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(10)
    drop_database(DATABASE)

    report = io.StringIO()
    report.write(
        f"### Discussion pages at 10, 1,000 and 10,000 comments, PostgreSQL ({datetime.now(UTC):%Y-%m-%d})\n\n"
    )
    report.write(
        f"Command: `.venv/bin/python bench/comment_pages.py --requests {args.requests} --readers {args.readers}`\n\n"
    )
    report.write(
        f"Machine: {machine()}. One server process (uvicorn, 4 worker threads), "
        f"{args.readers} concurrent signed-out readers on the same machine, {args.requests} requests "
        "per row after 20 to warm up.\n\n"
    )
    report.write("| comments | page | p50 ms | p99 ms | requests/s |\n|---|---|---|---|---|\n")
    for size, label, p50, p99, rate in results:
        report.write(f"| {size:,} | {label} | {p50:.1f} | {p99:.1f} | {rate:.0f} |\n")
    publish(report.getvalue(), bench="comment_pages", write=not args.no_write)


if __name__ == "__main__":
    main()
