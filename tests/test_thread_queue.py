"""The worker threads' queue finishes a begun request first (app/core/threads.py, issue #24): on AnyIO's own limiter,
as the app's lifespan sets it up, a hop of a task that held a token before is served ahead of first hops that
arrived earlier, and in the order they came among themselves."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread
from fastapi.testclient import TestClient

from app.core import threads
from app.main import create_app
from tests.conftest import make_settings


async def _served_order(*, begun_first: bool) -> list[str]:
    """A signature's first hop, then a holder takes the one token; three pages queue for it, then the signature's
    second hop; the holder lets go. Returns the order the hops were served in."""
    limiter = anyio.CapacityLimiter(1)
    if begun_first:
        assert threads.finish_begun_first(limiter), "AnyIO keeps its queue otherwise: see app/core/threads.py"
    order: list[str] = []
    release = asyncio.Event()

    async def hop(name: str) -> None:
        async with limiter:
            order.append(name)

    async def waiting(count: int) -> None:
        while limiter.statistics().tasks_waiting < count:
            await asyncio.sleep(0.001)

    async def hold() -> None:
        async with limiter:
            await release.wait()

    await hop("sign1")  # this task is the signature's request
    holder = asyncio.ensure_future(hold())
    while limiter.borrowed_tokens < 1:
        await asyncio.sleep(0.001)
    pages = [asyncio.ensure_future(hop(f"page{index}")) for index in range(3)]
    await waiting(3)

    async def let_go() -> None:
        await waiting(4)
        release.set()

    letting_go = asyncio.ensure_future(let_go())
    await hop("sign2")  # the same task's second hop
    await asyncio.gather(holder, *pages, letting_go)
    return order


def _run(begun_first: bool) -> list[str]:
    # On a loop of its own thread: a browser test may leave Playwright's loop running on this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _served_order(begun_first=begun_first)).result()


def test_a_begun_request_goes_ahead_of_first_hops() -> None:
    # Before: first come first served, the signature's second hop behind the three pages that queued before it.
    assert _run(begun_first=False) == ["sign1", "page0", "page1", "page2", "sign2"]
    assert _run(begun_first=True) == ["sign1", "sign2", "page0", "page1", "page2"]


async def _cancelled_and_grown() -> tuple[list[str], int]:
    """A begun hop cancelled while it waits leaves no token behind; a token added while hops wait goes to a begun
    one before a first hop that queued earlier."""
    limiter = anyio.CapacityLimiter(1)
    assert threads.finish_begun_first(limiter)
    order: list[str] = []
    release = asyncio.Event()

    async def hop(name: str) -> None:
        async with limiter:
            order.append(name)
            await release.wait()

    async def request(name: str, go: asyncio.Event, started: asyncio.Event) -> None:
        async with limiter:
            pass  # its first hop
        started.set()
        await go.wait()
        await hop(name)

    async def waiting(count: int) -> None:
        while limiter.statistics().tasks_waiting != count:
            await asyncio.sleep(0.001)

    events = {name: (asyncio.Event(), asyncio.Event()) for name in ("gone", "begun")}
    tasks = {name: asyncio.ensure_future(request(name, *events[name])) for name in events}
    for _go, started in events.values():
        await started.wait()
    holder = asyncio.ensure_future(hop("holder"))
    while limiter.borrowed_tokens < 1:
        await asyncio.sleep(0.001)
    first = asyncio.ensure_future(hop("first"))
    await waiting(1)
    events["gone"][0].set()
    await waiting(2)
    events["begun"][0].set()
    await waiting(3)
    tasks["gone"].cancel()  # its client went away while it waited
    await waiting(2)
    limiter.total_tokens = 2
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(holder, first, tasks["begun"])
    await asyncio.gather(tasks["gone"], return_exceptions=True)
    return order, limiter.borrowed_tokens


def test_a_cancelled_hop_leaves_no_token_and_new_tokens_go_begun_first() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        order, borrowed = pool.submit(asyncio.run, _cancelled_and_grown()).result()
    assert order == ["holder", "begun", "first"]
    assert borrowed == 0


def test_the_app_serves_with_it(database_url: str) -> None:
    """The app's lifespan gives the default limiter of the loop that serves it the order; a version of AnyIO that
    keeps its queue otherwise makes this fail rather than quietly serve first come first served."""

    async def queue_kind() -> str:
        return type(anyio.to_thread.current_default_thread_limiter()._wait_queue).__name__  # type: ignore[attr-defined]

    with TestClient(create_app(make_settings(database_url))) as client:
        assert client.portal is not None
        assert client.portal.call(queue_kind) == "_BegunFirst"
