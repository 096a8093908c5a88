"""A viral petition: signed-in readers, signers, a discussion and every open page's live updates, all at once.

    .venv/bin/python bench/viral_petition.py                                  # full size: 1,000,000 and 10,000
    .venv/bin/python bench/viral_petition.py --signatures 20000 --comments 500 --duration 10 --open-pages 500

The petition is built as bench/petition_page.py builds it (COPY for the signatures, the log to match, the
discussion), then for `--duration` seconds, against one server with `--workers` processes:
- `--readers` signed-in workers (64), each their own account, open the petition page one after the other (wrk);
- `--signers` clients (16) sign through the real sign path (POST /api/v1/petitions/{id}/signature), each
  signature from a different account;
- a worker comments `--comment-rate` times a second (POST /api/v1/petitions/{id}/comments);
- `--open-pages` pages stay open and do what the page's scripts do every `--poll-seconds`: ask for the count and
  how many new comments there are since the discussion's newest on the page (`/petitions/{id}/live?after=`, one
  poll for both, app/static/tally.js), with the ETag of the last answer (If-None-Match). Its reader does not ask for
  the new comments (the discussion is sorted by "top"), so the page's place stays where it was.
It prints and records (bench/results/, docs/benchmarks.md) page views/s with p50/p99, signatures/s, the
polls, every failed request, the server's CPU (from /proc) and whether the count came out exact.
Targets (issue #24): >= 300 page views/s and >= 100 signatures/s at the same time, page p99 < 250 ms, no failed
request. Kept out of `make test`: a run takes minutes, and the full size most of an hour to build.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import random
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.database import build_engine
from app.core.security import Keyring, new_token, token_digest
from app.models.accounts import User, UserSession, account_values
from bench import loadgen, petition_page
from bench.common import SECRET, drop_database, free_port, machine, percentile, publish, serve

DATABASE = "undersigned_viral_petition_bench"
TARGETS = {"page views/s": 300.0, "signatures/s": 100.0, "page p99 ms": 250.0}
WRK_TIMEOUT = 10  # seconds

# The readers' wrk script: each request as the next reader (their own session and CSRF seed), and the report line.
WRK_READERS = """
local cookies = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "%s", { ["Cookie"] = cookies[(counter %% #cookies) + 1] })
end
"""


class Person:
    """A signed-in browser: its cookie header and the CSRF token its forms carry."""

    def __init__(self, keyring: Keyring) -> None:
        self.session, self.seed = new_token(), new_token()
        self.cookie = f"undersigned_session={self.session}; undersigned_csrf={self.seed}"
        self.csrf = keyring.csrf_token(self.seed, self.session)


def people(url: str, count: int, prefix: str) -> list[Person]:
    """`count` verified workers, each signed in: written in bulk, as bench/sign_throughput.py does."""
    keyring = Keyring(SECRET)
    now = datetime.now(UTC)
    engine = build_engine(url)
    made = [Person(keyring) for _ in range(count)]
    # Through an ORM session, as bench/sign_throughput.py writes them: the address is sealed on the way in.
    with Session(engine) as db, db.begin():
        for start in range(0, count, 5000):
            batch = range(start, min(count, start + 5000))
            ids = db.scalars(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [
                    account_values(
                        email=f"{prefix}{i}@example.org",
                        display_name=f"{prefix.title()} {i}",
                        email_verified_at=now,
                        created_at=now,
                    )
                    for i in batch
                ],
            ).all()
            db.execute(
                insert(UserSession),
                [
                    {
                        "id_digest": token_digest(made[i].session),
                        "user_id": user_id,
                        "created_at": now,
                        "expires_at": now + timedelta(days=1),
                    }
                    for i, user_id in zip(batch, ids, strict=True)
                ],
            )
    engine.dispose()
    return made


async def _sign_and_comment(client: loadgen.Client, deadline: float, args: dict[str, Any]) -> dict[str, loadgen.Tally]:
    """The signers, each signature from the next unused account, and the commenter, a comment every 1/rate seconds
    sent without waiting for the one before (arrivals keep their pace however slowly the server answers)."""
    tallies = {"sign": loadgen.Tally(), "comment": loadgen.Tally()}
    petition_id = args["petition_id"]
    accounts = iter(args["signers"])

    async def post(kind: str, path: str, person: tuple[str, str], body: dict[str, object], fresh: bool) -> None:
        started = time.perf_counter()
        headers = {"Cookie": person[0], "X-CSRF-Token": person[1], "Content-Type": "application/json"}
        try:
            answer = await client.request("POST", path, headers, json.dumps(body).encode(), fresh=fresh)
        except loadgen.Failed as failure:
            tallies[kind].add(started, 0, str(failure))
            return
        tallies[kind].add(started, answer.status)

    async def signer() -> None:
        for person in accounts:
            if time.time() >= deadline:
                return
            visibility = "public" if random.random() < 0.6 else "organizers"
            # Each signature is another worker's, from their own browser: a connection of its own. Sixteen
            # kept-alive connections opened at once were all accepted by one server process in most runs (all
            # 1,951 signatures of one on 2026-12-07, none on the other), which measured the kernel's accept
            # race, not the server: the first process to wake takes every connection waiting.
            await post(
                "sign", f"/api/v1/petitions/{petition_id}/signature", person, {"visibility": visibility}, fresh=True
            )

    async def commenter() -> None:
        sent: list[asyncio.Task[None]] = []
        number = 0
        while time.time() < deadline:
            person = args["commenters"][number % len(args["commenters"])]
            number += 1
            body = f"Comment {number} of the run: the canteen should open earlier for the night shift."
            sent.append(asyncio.create_task(post("comment", f"/api/v1/petitions/{petition_id}/comments", person,
                                                 {"body": body}, False)))  # fmt: skip
            await asyncio.sleep(1 / args["comment_rate"])
        await asyncio.gather(*sent)

    await asyncio.gather(*(signer() for _ in range(args["signer_count"])), commenter())
    return tallies


async def _open_pages(client: loadgen.Client, deadline: float, args: dict[str, Any]) -> dict[str, loadgen.Tally]:
    """Open pages doing what the page's script does (app/static/tally.js: one poll for the tally and the discussion's
    count): each poll a poll interval after the previous answer, first at a random moment within the first interval,
    with the ETag of its last 200 answer (If-None-Match) and the discussion's place the page opened at (its reader
    is offered the new comments and does not ask for them). A poll's time counts from when it was due, waiting for a
    connection of the client's pool included."""
    tallies = {"live poll": loadgen.Tally()}
    petition_id, interval = args["petition_id"], args["poll_seconds"]

    async def poll(kind: str, path: str, cookie: str, tag: str | None) -> loadgen.Answer | None:
        started = time.perf_counter()
        headers = {"Cookie": cookie, **({"If-None-Match": tag} if tag else {})}
        try:
            answer = await client.request("GET", path, headers)
        except loadgen.Failed as failure:
            tallies[kind].add(started, 0, str(failure))
            return None
        tallies[kind].add(started, answer.status)
        return answer

    async def page(number: int) -> None:
        cookie = args["cookies"][number % len(args["cookies"])]
        tag: str | None = None
        path = f"/petitions/{petition_id}/live?after={quote(args['start_after'])}"
        await asyncio.sleep(random.uniform(0, interval))
        while time.time() < deadline:
            answer = await poll("live poll", path, cookie, tag)
            if answer is not None and answer.status == 200:
                tag = answer.headers.get("etag")
            await asyncio.sleep(interval)

    await asyncio.gather(*(page(number) for number in args["pages"]))
    return tallies


def load(args: argparse.Namespace, port: int, petition_id: int, signers: list[Person], commenters: list[Person],
         readers: list[Person], start_after: str, start: float) -> Callable[[], list[loadgen.Outcome]]:  # fmt: skip
    """Signers and the commenter in one process, the open pages in `--client-processes` others, all from `start`
    (wall clock) for the duration; returns what waits for their outcomes."""
    roles: list[tuple[loadgen.Role, int, Any]] = [
        (
            _sign_and_comment,
            args.signers + 16,
            {
                "petition_id": petition_id,
                "signers": [(person.cookie, person.csrf) for person in signers],
                "signer_count": args.signers,
                "commenters": [(person.cookie, person.csrf) for person in commenters],
                "comment_rate": args.comment_rate,
            },
        )
    ]
    roles += [
        (
            _open_pages,
            64,
            {
                "petition_id": petition_id,
                "cookies": [person.cookie for person in readers],
                "pages": range(share, args.open_pages, args.client_processes),
                "poll_seconds": args.poll_seconds,
                "start_after": start_after,
            },
        )
        for share in range(args.client_processes)
    ]
    return loadgen.start_roles(roles, port=port, start=start, duration=args.duration)


def server_pids(root: int) -> list[int]:
    """The server process and its worker processes."""
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
    """User and system CPU time of the processes, from /proc (utime and stime, fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def count_signatures(url: str, petition_id: int) -> tuple[int, int]:
    """The petition's counter and its signature rows."""
    engine = build_engine(url)
    with engine.connect() as connection:
        counter = connection.scalar(text("SELECT signature_count FROM petitions WHERE id = :id"), {"id": petition_id})
        rows = connection.scalar(
            text("SELECT count(*) FROM signatures WHERE petition_id = :id AND invalidation_id IS NULL"),
            {"id": petition_id},
        )
    engine.dispose()
    return int(counter or 0), int(rows or 0)


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.reuse:
        url, petition_ids, _session = petition_page.reuse(args.database, [args.signatures])
    else:
        url, petition_ids, _session = petition_page.prepare(args.database, [args.signatures], args.comments)
    petition_id = petition_ids[args.signatures]
    tag = secrets.token_hex(3)  # a --reuse run adds accounts of its own
    # Enough signers for the whole run at twice the target rate, each account signing once.
    signers = people(url, math.ceil(args.duration * TARGETS["signatures/s"] * 2), f"signer{tag}-")
    readers = people(url, args.readers, f"reader{tag}-")
    commenters = people(url, max(1, math.ceil(args.duration * args.comment_rate)), f"commenter{tag}-")
    counter_before, rows_before = count_signatures(url, petition_id)
    with tempfile.TemporaryDirectory() as workdir:
        script = Path(workdir) / "readers.lua"
        cookies = ", ".join(f'"{person.cookie}"' for person in readers)
        script.write_text(WRK_READERS % (cookies, f"/petitions/{petition_id}") + petition_page.WRK_REPORT)
        port = free_port()
        server = serve(
            url,
            port,
            Path(workdir) / "server.log",
            workers=args.workers,
            settings={
                # Several processes share their page versions (the polls' ETags) through Redis, as a deployment of
                # several processes must (docs/scaling.md): in each one's memory, a poll answered by the other
                # process never matched its tag, and a signature through one left the other's counter behind.
                **({"redis_url": args.redis_url} if args.redis_url else {}),
                "anonymous_batch_seconds": "3600",
                "shared_page_seconds": "5",
                "tally_cache_seconds": "60",
                # One person one signature is the rule measured; the per-account limits are not.
                "rate_limit_sign": "1000000/minute",
                "rate_limit_comment": "1000000/minute",
                "tally_poll_seconds": str(args.poll_seconds),
                "comment_poll_seconds": str(args.poll_seconds),
            },
            wait_seconds=120,
            spread=True,
        )
        try:
            target = f"http://127.0.0.1:{port}/petitions/{petition_id}"
            # The readers are signed in (their page has the sign-out form), or the run would measure another page.
            with httpx2.Client(trust_env=False, timeout=60) as check:
                page = check.get(target, headers={"Cookie": readers[0].cookie})
                if 'action="/signout"' not in page.text:
                    raise RuntimeError(f"a reader's page is not signed in ({page.status_code})")
            petition_page.wrk(target, seconds=2, connections=args.readers, script=script, cookie=None)  # warm up
            petition_page.drain(port)
            # Where the discussion stood when the pages were opened (the page's data-after).
            with httpx2.Client(trust_env=False, timeout=60) as check:
                opened = check.get(f"http://127.0.0.1:{port}/petitions/{petition_id}/comments/new?after=")
                start_after = opened.headers.get("x-latest-comment", "")
            pids = server_pids(server.pid)
            # The client processes start now and begin their load together with wrk, a moment from now.
            start = time.time() + 1.0 + 0.002 * args.open_pages / args.client_processes
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            outcomes = load(args, port, petition_id, signers, commenters, readers, start_after, start)
            time.sleep(max(0.0, start - time.time()))
            cpu_before, database_before = cpu_seconds(pids), {pid: cpu_seconds([pid]) for pid in postgres_pids()}
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            wrk = subprocess.Popen(
                [
                    "wrk",
                    "-t1",
                    f"-c{args.readers}",
                    f"-d{args.duration}s",
                    "--timeout",
                    f"{WRK_TIMEOUT}s",
                    "-s",
                    str(script),
                    target,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            output, _ = wrk.communicate(timeout=args.duration + 60)
            # The CPU of the load itself, read as it ends: waiting for the clients' processes to finish and exit
            # took up to half as long again, and CPU divided by that longer time showed the servers about a third
            # less busy than they were (1.05 cores of the 1.6 that /proc read during the load, 2026-12-07).
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(pids) - cpu_before
            # Backends started during the run count from zero; one that ended took its time with it.
            database_cpu = sum(cpu_seconds([pid]) - database_before.get(pid, 0.0) for pid in postgres_pids())
            finished = outcomes()
            children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            client_cpu = sum(getattr(children_after, f) - getattr(children_before, f) for f in ("ru_utime", "ru_stime"))
        finally:
            petition_page.stop(server)
    pages = _parse_wrk(output)
    counter_after, rows_after = count_signatures(url, petition_id)
    if not args.keep:
        drop_database(args.database)
    tallies: dict[str, loadgen.Tally] = {}
    for outcome in finished:
        for kind, tally in outcome.tallies.items():
            tallies.setdefault(kind, loadgen.Tally()).merge(tally)
    signed = tallies["sign"].count(200, 201)
    return {
        "pages": pages,
        "tallies": tallies,
        "elapsed": elapsed,
        "cpu": cpu,
        "database_cpu": database_cpu,
        "client_cpu": client_cpu,
        "load": load_before,
        "signed": signed,
        # The counter moved exactly as the rows did (a signature whose answer timed out still counts, on both).
        "exact": counter_after - counter_before == rows_after - rows_before,
        "counts": (counter_before, counter_after, rows_before, rows_after),
    }


def _parse_wrk(output: str) -> dict[str, float]:
    match = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    requests, bad_status, errors, duration_us, p50_us, p99_us = map(int, match.groups())
    return {
        "requests": requests,
        "failed": bad_status + errors,
        "per_second": requests / (duration_us / 1e6),
        "p50": p50_us / 1000,
        "p99": p99_us / 1000,
    }


def report(args: argparse.Namespace, result: dict[str, object]) -> str:
    pages: dict[str, float] = result["pages"]  # type: ignore[assignment]
    tallies: dict[str, loadgen.Tally] = result["tallies"]  # type: ignore[assignment]
    elapsed: float = result["elapsed"]  # type: ignore[assignment]
    sign, comment = tallies["sign"], tallies["comment"]
    polls = [tallies["live poll"]]
    signatures_per_second = result["signed"] / args.duration  # type: ignore[operator]
    failed = {
        "page views": int(pages["failed"]),
        "signatures": sign.failed(200, 201),
        "comments": comment.failed(201),
        "polls": sum(poll.failed(200, 304) for poll in polls),
    }
    checks = {
        "page views/s": (pages["per_second"], pages["per_second"] >= TARGETS["page views/s"]),
        "signatures/s": (signatures_per_second, signatures_per_second >= TARGETS["signatures/s"]),
        "page p99 ms": (pages["p99"], pages["p99"] < TARGETS["page p99 ms"]),
    }
    out = io.StringIO()
    out.write(
        f"### Viral petition at {args.signatures:,} signatures and {args.comments:,} comments, "
        f"{args.workers} worker(s) ({datetime.now(UTC):%Y-%m-%d})\n\n"
    )
    out.write(
        f"Command: `.venv/bin/python bench/viral_petition.py --signatures {args.signatures} --comments "
        f"{args.comments} --workers {args.workers} --duration {args.duration} --readers {args.readers} --signers "
        f"{args.signers} --comment-rate {args.comment_rate:g} --open-pages {args.open_pages} --poll-seconds "
        f"{args.poll_seconds:g} --client-processes {args.client_processes} --redis-url '{args.redis_url}'`\n\n"
    )
    out.write(
        f"Code: {petition_page.code_version()}. Machine: {machine()}; PostgreSQL, wrk (the readers) and the client "
        f"(bench/loadgen.py: the signers and comments in one process, the open pages in {args.client_processes}) on "
        f"the same machine. {args.duration} s of load; 1-minute load average before it {result['load']:.2f}. During "
        f"the load ({elapsed:.1f} s): server CPU {result['cpu']:.1f} s ({result['cpu'] / elapsed:.2f} cores), "
        f"PostgreSQL {result['database_cpu']:.1f} s ({result['database_cpu'] / elapsed:.2f} cores); the clients (wrk "
        f"and loadgen, to their exit) {result['client_cpu']:.1f} s. Page versions in "
        f"{'Redis' if args.redis_url else 'each process' + chr(39) + 's memory'}.\n\n"
    )
    out.write("| what | count | per second | p50 ms | p99 ms | failed | target |\n|---|---|---|---|---|---|---|\n")
    verdict = {name: f"{'met' if ok else 'NOT met'}" for name, (_value, ok) in checks.items()}
    out.write(
        f"| signed-in page views ({args.readers} readers) | {pages['requests']:.0f} | {pages['per_second']:.0f} | "
        f"{pages['p50']:.1f} | {pages['p99']:.1f} | {failed['page views']} | >= 300/s {verdict['page views/s']}, "
        f"p99 < 250 ms {verdict['page p99 ms']} |\n"
    )
    for name, tally, good, target in (
        (f"signatures ({args.signers} signers)", sign, (200, 201), f">= 100/s {verdict['signatures/s']}"),
        ("comments", comment, (201,), f"{args.comment_rate:g}/s"),
        (f"live polls ({args.open_pages} open pages)", polls[0], (200, 304), ""),
    ):
        answered = sum(tally.statuses.get(status, 0) for status in good)
        latencies = tally.latencies or [0.0]
        share = ""
        if 304 in good and answered:
            share = f" ({100 * tally.count(304) / answered:.0f}% 304)"
        out.write(
            f"| {name} | {answered}{share} | {answered / args.duration:.1f} | "
            f"{percentile(latencies, 0.5) * 1000:.1f} | {percentile(latencies, 0.99) * 1000:.1f} | "
            f"{tally.failed(*good)} | {target} |\n"
        )
    counter_before, counter_after, rows_before, rows_after = result["counts"]  # type: ignore[misc]
    all_met = all(ok for _value, ok in checks.values()) and not any(failed.values())
    out.write(
        f"\nCount exact: {'yes' if result['exact'] else 'NO'} (counter {counter_before:,} → {counter_after:,}, "
        f"rows {rows_before:,} → {rows_after:,}; {result['signed']:,} signatures answered 201, the rest timed out "
        "or failed). "
        f"Failed requests: {sum(failed.values())}{_failures(tallies)}. "
        f"All targets: **{'met' if all_met else 'NOT met'}**.\n"
    )
    return out.getvalue()


NO_ANSWER = f"with no answer (refused, reset, or none within {loadgen.TIMEOUT:g} s)"


def _failures(tallies: dict[str, loadgen.Tally]) -> str:
    """What the failed requests were answered, by kind: a count of failures says nothing of their cause."""
    good = {"sign": (200, 201), "comment": (201,), "live poll": (200, 304)}
    parts = [
        f"{kind}: {count} {NO_ANSWER if status == 0 else f'answered {status}'}"
        + (f" [{_reasons(tally)}]" if status == 0 and tally.reasons else "")
        for kind, tally in sorted(tallies.items())
        for status, count in sorted(tally.statuses.items())
        if status not in good.get(kind, (200,))
    ]
    return f" ({'; '.join(parts)})" if parts else ""


def _reasons(tally: loadgen.Tally) -> str:
    """Why the client had no answer (its error, as the client saw it), the most frequent first."""
    return ", ".join(
        f"{count} x {reason}" for reason, count in sorted(tally.reasons.items(), key=lambda item: -item[1])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=1_000_000, help="Signatures the petition starts with.")
    parser.add_argument("--comments", type=int, default=10_000, help="Comments in its discussion.")
    parser.add_argument("--workers", type=int, default=2, help="Server processes.")
    parser.add_argument("--duration", type=int, default=30, help="Seconds of load (after a 2 s warm-up of pages).")
    parser.add_argument("--readers", type=int, default=64, help="Signed-in readers opening the page (wrk).")
    parser.add_argument("--signers", type=int, default=16, help="Concurrent signers.")
    parser.add_argument("--comment-rate", type=float, default=1.0, help="Comments per second.")
    parser.add_argument("--open-pages", type=int, default=1000, help="Open pages polling for live updates.")
    parser.add_argument("--poll-seconds", type=float, default=15.0, help="How often each open page polls.")
    parser.add_argument("--client-processes", type=int, default=1, help="Processes the open pages' polls run in.")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/11",
        help="Redis for the server processes' page versions and limits ('' for none: one process only).",
    )
    parser.add_argument("--database", default=DATABASE, help="Scratch PostgreSQL database (dropped at the end).")
    parser.add_argument("--keep", action="store_true", help="Keep the database at the end, for --reuse.")
    parser.add_argument("--reuse", action="store_true", help="Measure the database a --keep run left.")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()
    petition_page.require_wrk()
    random.seed(24)
    publish(report(args, run(args)), bench="viral_petition", write=not args.no_write)


if __name__ == "__main__":
    main()
