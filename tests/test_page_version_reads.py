"""One read of a page version from Redis answers a process's live polls for `read_seconds` (issue #24).

10,000 open pages polling every 15 s made two reads each from Redis, 1,300 a second in the viral petition, and the
asyncio client's work for them was 18 % of the server processes' CPU. `PageVersions.read` now shares one read per
counter among the polls of a process for `read_seconds` (`READ_SECONDS` in production). These tests count the
commands that reach Redis (through tests/test_page_versions_redis.py's proxy) and check what sharing must not do:
keep an answer past its time, keep a failed read, or let one poll's cancellation fail the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis

from app.core import versions
from app.core.runtime import build_runtime
from app.core.settings import Settings
from tests.conftest import make_settings
from tests.test_page_versions_redis import SlowRedis, slow_redis  # noqa: F401 (the fixture)

pytestmark = pytest.mark.one_database

T = TypeVar("T")


def _on_a_loop(rt: Any, redis_url: str, read_seconds: float, run: Callable[[versions.PageVersions], Awaitable[T]]) -> T:
    """`run` on a loop of its own thread, with the loop's client opened and closed as the app's lifespan does (a
    browser test before this one may leave Playwright's loop running on this thread)."""
    page_versions = versions.PageVersions(rt.keyring, redis_url, rt.clock, read_seconds=read_seconds)

    async def main() -> T:
        await page_versions.open_loop_client()
        try:
            return await run(page_versions)
        finally:
            await page_versions.close_loop_client()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _commands(proxy: SlowRedis) -> int:
    count = 0
    while not proxy.commands.empty():
        proxy.commands.get_nowait()
        count += 1
    return count


def _bump(url: str, petition_id: int) -> None:
    versions.RedisCounters(url).bump([petition_id])
    versions.RedisCounters(url, versions.CONTENT_KEY_PREFIX).bump([petition_id])


def test_the_polls_of_a_process_share_one_read_for_its_time(slow_redis: SlowRedis, rt) -> None:
    petition_id = 10**15 + versions._base()
    _bump(slow_redis.url, petition_id)
    now = [1000.0]

    async def run(page_versions: versions.PageVersions) -> tuple[int, list[int | None], int, list[int | None], int]:
        page_versions.monotonic = lambda: now[0]
        await page_versions.read(10**15 - 1)  # the client's connection made before anything is counted
        slow_redis.forget_traffic()
        slow_redis.delay = 0.05
        at_once = await asyncio.gather(*(page_versions.read(petition_id) for _ in range(10)))
        after = [await page_versions.read(petition_id) for _ in range(10)]
        both = [await page_versions.read(petition_id, versions.CONTENT) for _ in range(5)]
        shared = _commands(slow_redis)
        _bump(slow_redis.url, petition_id)
        slow_redis.forget_traffic()
        now[0] += 0.1
        within = await page_versions.read(petition_id)
        now[0] += page_versions.read_seconds
        past = await page_versions.read(petition_id)
        return shared, [*at_once, *after, *both], _commands(slow_redis), [within, past], len(set(at_once + after))

    shared, answers, later, (within, past), distinct = _on_a_loop(rt, slow_redis.url, 0.25, run)
    # Before: 50 (a read per poll, and the ten polls at once each on a connection of its own, opened for it).
    assert shared == 2, f"{shared} writes reached Redis for 25 polls of two counters"
    assert distinct == 1 and None not in answers
    first = answers[0]
    assert first is not None
    assert within == first, "a read within its time answers what Redis said then"
    assert past == first + 1, "past its time a poll reads again, and sees the change"
    assert later == 1


def test_a_failed_read_is_not_shared(slow_redis: SlowRedis, rt) -> None:
    petition_id = 10**15 + versions._base()
    _bump(slow_redis.url, petition_id)
    expected = int(redis.Redis.from_url(slow_redis.url).get(versions.KEY_PREFIX + str(petition_id)) or 0)

    async def run(page_versions: versions.PageVersions) -> tuple[int | None, int | None]:
        slow_redis.delay = 1.0  # past the client's 0.5 s timeout: this read fails
        failed = await page_versions.read(petition_id)
        slow_redis.delay = 0.0
        return failed, await page_versions.read(petition_id)

    failed, then = _on_a_loop(rt, slow_redis.url, 60.0, run)
    assert failed is None
    assert then == expected, "the next poll asks Redis again rather than keep the failure for a minute"


def test_a_poll_that_goes_away_does_not_fail_the_others(slow_redis: SlowRedis, rt) -> None:
    petition_id = 10**15 + versions._base()
    _bump(slow_redis.url, petition_id)

    async def run(page_versions: versions.PageVersions) -> tuple[bool, int | None]:
        await page_versions.read(10**15 - 1)
        slow_redis.delay = 0.2
        slow_redis.forget_traffic()
        first = asyncio.ensure_future(page_versions.read(petition_id))
        while slow_redis.commands.empty():  # the shared read has reached Redis, which holds its reply
            await asyncio.sleep(0.005)
        second = asyncio.ensure_future(page_versions.read(petition_id))
        await asyncio.sleep(0)  # the second poll waits for the same read now
        first.cancel()  # its client went away while Redis answered
        answer = await second
        return first.cancelled(), answer

    cancelled, answer = _on_a_loop(rt, slow_redis.url, 0.25, run)
    assert cancelled
    assert answer is not None and answer > 0, "the poll still waiting got the version"


@pytest.mark.parametrize(
    ("shared_page_seconds", "expected"), [(5.0, versions.READ_SECONDS), (None, 0.0), (0.0, 0.0), (0.1, 0.1)]
)
def test_reads_are_shared_in_production_within_the_pages_freshness(
    slow_redis: SlowRedis,
    database_url: str,
    shared_page_seconds: float | None,
    expected: float,
    rt,
) -> None:
    """Production's 5 s share reads for READ_SECONDS; a deployment with fresher pages shares them no longer than
    its pages; where pages are exact (tests, development: no `shared_page_seconds`), each poll reads."""
    settings: Settings = make_settings(database_url, redis_url=slow_redis.url, shared_page_seconds=shared_page_seconds)
    built = build_runtime(settings, clock=rt.clock, templates=rt.templates)
    assert built.page_versions.read_seconds == expected


def test_a_pages_read_is_shared_until_this_process_changes_the_petition(slow_redis: SlowRedis, rt) -> None:
    """`get`, the worker threads' read (each signed-in page read both counters): one read for `read_seconds`; a
    change made in this process is seen at once (its worker is sent back to the page, to this process); one made in
    another process once the time is over."""
    petition_id = 10**15 + versions._base()
    _bump(slow_redis.url, petition_id)
    page_versions = versions.PageVersions(rt.keyring, slow_redis.url, rt.clock, read_seconds=0.25)
    now = [1000.0]
    page_versions.counters.monotonic = lambda: now[0]  # type: ignore[attr-defined]
    other_process = versions.RedisCounters(slow_redis.url)
    page_versions.get(10**15 - 1)  # the connection made before anything is counted
    slow_redis.forget_traffic()
    answers = {page_versions.get(petition_id) for _ in range(10)}
    first = answers.pop()
    assert first is not None and not answers
    # Before: 10 (a read per page).
    assert _commands(slow_redis) == 1
    page_versions.counters.bump([petition_id])  # this process's change
    assert page_versions.get(petition_id) == first + 1
    other_process.bump([petition_id])
    assert page_versions.get(petition_id) == first + 1, "another process's change waits for the read's time"
    now[0] += 0.25
    assert page_versions.get(petition_id) == first + 2


def test_a_read_under_way_as_this_process_bumps_is_not_kept(slow_redis: SlowRedis, rt) -> None:
    petition_id = 10**15 + versions._base()
    _bump(slow_redis.url, petition_id)
    page_versions = versions.PageVersions(rt.keyring, slow_redis.url, rt.clock, read_seconds=60.0)
    page_versions.get(10**15 - 1)
    slow_redis.delay = 0.2
    slow_redis.forget_traffic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        reading = pool.submit(page_versions.get, petition_id)
        slow_redis.commands.get(timeout=10)  # the read has reached Redis, and waits for its reply
        page_versions.counters.bump([petition_id])  # this process's change, while the read is under way
        old = reading.result()
    assert old is not None
    # Before the count of bumps: the read was kept for its minute, and this process's own change unseen.
    assert page_versions.get(petition_id) == old + 1


def test_a_read_made_while_this_process_increments_is_not_kept(slow_redis: SlowRedis, rt, monkeypatch) -> None:
    """A page's read that reaches Redis after the bump began but before its increment did (it reads the number
    before the change) is not kept: the bump forgets reads again once Redis has the increment."""
    petition_id = 10**15 + versions._base()
    _bump(slow_redis.url, petition_id)
    page_versions = versions.PageVersions(rt.keyring, slow_redis.url, rt.clock, read_seconds=60.0)
    counters = page_versions.counters
    before = page_versions.get(petition_id)
    assert before is not None
    real_pipeline = counters._redis.pipeline  # type: ignore[attr-defined]
    read_between: list[int | None] = []

    def pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        execute = pipe.execute

        def read_then_execute(*a, **k):
            read_between.append(page_versions.get(petition_id))  # another page, between the bump's start and Redis
            return execute(*a, **k)

        monkeypatch.setattr(pipe, "execute", read_then_execute)
        return pipe

    monkeypatch.setattr(counters._redis, "pipeline", pipeline)  # type: ignore[attr-defined]
    counters.bump([petition_id])
    assert read_between == [before]
    # Before: the read between was kept for its minute, and this process's own change unseen.
    assert page_versions.get(petition_id) == before + 1
