"""What the request stack costs a signed-in petition page: the middleware, each app-wide dependency, the server.

    .venv/bin/python bench/request_stack.py                        # 10,000 signatures, 200 comments
    .venv/bin/python bench/request_stack.py --signatures 100000 --comments 1000 --requests 400

Two parts, on the petition bench/petition_page.py builds:
1. In one process, without a network (the app called through httpx's ASGI transport, one request at a time):
   the median time of /healthz and of the signed-in petition page with the app as built, and with its two
   middlewares (RequestContextMiddleware, SharedPageCache) taken out; and the time spent inside each dependency
   every page route runs (csrf_protect, organization_pages.attach, get_db's start and end, load_user), measured
   by wrapping each in a timer through FastAPI's dependency overrides. The wrapped functions' own time only:
   each synchronous dependency also costs a hop to a worker thread, which the page's total shows. The signed-in
   page is measured as it is served (a plain member's page from the shared copy, before the route:
   app/routes/petition_reader.py) and through the route, alternating, with the statements each runs; the
   dependencies are timed on the route, and "no middleware" keeps the fast path, itself a middleware.
2. Under uvicorn with wrk (64 connections): /healthz and the signed-in page with the pure-Python event loop and
   HTTP parser (asyncio, h11) and with the ones `undersigned serve` names (uvloop, httptools).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.database import get_db
from app.core.settings import Settings
from app.core.web import csrf_protect
from app.main import create_app
from app.routes import organization_pages, petition_reader
from app.routes.policy import load_user
from bench import petition_page
from bench.common import SECRET, drop_database, free_port, machine, publish, serve
from bench.viral_petition import cpu_seconds, server_pids

DATABASE = "undersigned_request_stack_bench"


def _timed(function: Callable[..., Any], spent: dict[str, list[float]], name: str) -> Callable[..., Any]:
    """`function` with its time recorded; the same signature, so FastAPI resolves the same dependencies."""
    if inspect.isasyncgenfunction(function):

        @functools.wraps(function)
        async def generator(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            inner = function(*args, **kwargs)
            value = await inner.__anext__()
            spent[f"{name} (start)"].append(time.thread_time() - started)
            try:
                yield value
            except BaseException as error:
                await inner.athrow(error)
                raise
            started = time.thread_time()
            with contextlib.suppress(StopAsyncIteration):
                await inner.__anext__()
            spent[f"{name} (end)"].append(time.thread_time() - started)

        return generator
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                spent[name].append(time.thread_time() - started)

        return coroutine

    @functools.wraps(function)
    def plain(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name].append(time.thread_time() - started)

    return plain


async def _median_ms(client: httpx2.AsyncClient, path: str, cookie: str | None, count: int) -> float:
    """CPU milliseconds of this process (every thread: the loop's and the workers') per request, over `count`
    requests one at a time: on a shared machine, CPU time is what other processes disturb least."""
    headers = {"Cookie": cookie} if cookie else {}
    for _ in range(max(5, count // 10)):  # warm up
        (await client.get(path, headers=headers)).raise_for_status()
    started = time.process_time()
    for _ in range(count):
        (await client.get(path, headers=headers)).raise_for_status()
    return (time.process_time() - started) / count * 1000


@contextlib.contextmanager
def _fast_path_off() -> Iterator[None]:
    original = petition_reader._page
    petition_reader._page = lambda *args: None  # type: ignore[assignment]
    try:
        yield
    finally:
        petition_reader._page = original  # type: ignore[assignment]


@contextlib.contextmanager
def _counting(app: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = app.state.sessionmaker.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def in_process(url: str, petition_id: int, cookie: str, count: int) -> dict[str, float]:
    settings = Settings(
        environment="test",
        database_url=url,
        secret_key=SECRET,
        inprocess_worker=False,
        anonymous_batch_seconds=3600,
        shared_page_seconds=0,
    )
    app = create_app(settings)
    logging.getLogger("undersigned").setLevel(logging.WARNING)  # no request lines from this process
    page = f"/petitions/{petition_id}"
    results: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            results["/healthz"] = await _median_ms(client, "/healthz", None, count)
            results["signed-in page"] = await _median_ms(client, page, cookie, count)
            # The same page through the route (the member's fast path off: app/routes/petition_reader.py), and both
            # again, alternating, so that a change in the machine's load shows as a difference between rounds.
            for round_ in (1, 2):
                with _fast_path_off():
                    results[f"signed-in page, through the route (round {round_})"] = await _median_ms(
                        client, page, cookie, count
                    )
                results[f"signed-in page (round {round_ + 1})"] = await _median_ms(client, page, cookie, count)
            for label, fast in (("", True), (", through the route", False)):
                with _counting(app) as statements, contextlib.ExitStack() as stack:
                    if not fast:
                        stack.enter_context(_fast_path_off())
                    (await client.get(page, headers={"Cookie": cookie})).raise_for_status()
                results[f"statements per signed-in page{label}"] = float(len(statements))
            spent: dict[str, list[float]] = {
                key: []
                for key in ("csrf_protect", "organization_pages.attach", "get_db (start)", "get_db (end)", "load_user")
            }
            for dependency, name in (
                (csrf_protect, "csrf_protect"),
                (organization_pages.attach, "organization_pages.attach"),
                (get_db, "get_db"),
                (load_user, "load_user"),
            ):
                app.dependency_overrides[dependency] = _timed(dependency, spent, name)
            with _fast_path_off():  # the dependencies run only on the route
                await _median_ms(client, page, cookie, count)
            app.dependency_overrides.clear()
            for name, times in spent.items():
                results[f"dependency: {name}"] = statistics.median(times) * 1000 if times else 0.0
            # The same requests through the app without its middleware but the member's fast path, itself one (the
            # stack is rebuilt on the next call).
            kept = list(app.user_middleware)
            app.user_middleware[:] = [entry for entry in kept if entry.cls is petition_reader.ReaderPages]
            app.middleware_stack = None
            results["/healthz, no middleware"] = await _median_ms(client, "/healthz", None, count)
            results["signed-in page, no middleware"] = await _median_ms(client, page, cookie, count)
            app.user_middleware[:] = kept
            app.middleware_stack = None
    return results


def under_uvicorn(url: str, petition_id: int, cookie: str, seconds: int) -> list[tuple[str, str, dict[str, float]]]:
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        script = Path(workdir) / "report.lua"
        script.write_text(petition_page.WRK_REPORT)
        for label, loop, http in (("asyncio + h11", "asyncio", "h11"), ("uvloop + httptools", "uvloop", "httptools")):
            port = free_port()
            server = serve(
                url,
                port,
                Path(workdir) / "server.log",
                settings={"anonymous_batch_seconds": "3600", "shared_page_seconds": "0"},
                environ={"UVICORN_LOOP": loop, "UVICORN_HTTP": http},
            )
            try:
                for page, path, page_cookie in (
                    ("/healthz", "/healthz", None),
                    ("signed-in page", f"/petitions/{petition_id}", cookie),
                ):
                    target = f"http://127.0.0.1:{port}{path}"
                    petition_page.wrk(target, seconds=2, connections=64, script=script, cookie=page_cookie)
                    petition_page.drain(port)
                    pids = server_pids(server.pid)
                    cpu = cpu_seconds(pids)
                    result = petition_page.wrk(
                        target, seconds=seconds, connections=64, script=script, cookie=page_cookie
                    )
                    result["cpu_ms"] = (cpu_seconds(pids) - cpu) / max(1, result["requests"]) * 1000
                    rows.append((label, page, result))
                    petition_page.drain(port)
            finally:
                petition_page.stop(server)
    return rows


def report(
    args: argparse.Namespace, measured: dict[str, float], served: list[tuple[str, str, dict[str, float]]]
) -> str:
    out = io.StringIO()
    out.write(
        f"### Request stack of the signed-in petition page, {args.signatures:,} signatures, {args.comments:,} "
        f"comments ({datetime.now(UTC):%Y-%m-%d})\n\n"
    )
    out.write(
        f"Command: `.venv/bin/python bench/request_stack.py --signatures {args.signatures} --comments "
        f"{args.comments} --requests {args.requests} --duration {args.duration}"
        f"{' --in-process-only' if args.in_process_only else ''}`\n\n"
    )
    out.write(
        f"Code: {petition_page.code_version()}. Machine: {machine()}; PostgreSQL on the same machine. In one "
        f"process: CPU time over {args.requests} requests one at a time (dependencies: the median of each one's own thread CPU time). Under uvicorn: wrk, 64 connections, "
        f"{args.duration} s.\n\n"
    )
    out.write("| in one process | CPU ms per request (statements: their number) |\n|---|---|\n")
    for name, value in measured.items():
        out.write(f"| {name} | {value:.2f} |\n")
    out.write(
        "\n| server | page | requests/s | p50 ms | p99 ms | server CPU ms per request | failed |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    for label, page, result in served:
        out.write(
            f"| {label} | {page} | {result['per_second']:.0f} | {result['p50']:.1f} | {result['p99']:.1f} | "
            f"{result['cpu_ms']:.2f} | {result['failed']:.0f} |\n"
        )
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200, help="Requests per in-process measurement.")
    parser.add_argument("--duration", type=int, default=5, help="Seconds of wrk per row under uvicorn.")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--in-process-only", action="store_true", help="Skip the rows under uvicorn.")
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()
    petition_page.require_wrk()
    url, ids, session_id = petition_page.prepare(args.database, [args.signatures], args.comments)
    cookie = f"undersigned_session={session_id}"
    try:
        measured = asyncio.run(in_process(url, ids[args.signatures], cookie, args.requests))
        served = [] if args.in_process_only else under_uvicorn(url, ids[args.signatures], cookie, args.duration)
    finally:
        drop_database(args.database)
    publish(report(args, measured, served), bench="request_stack", write=not args.no_write)


if __name__ == "__main__":
    main()
