"""The members' copy of a petition page is made by one request at a time (issue #24's viral petition).

With a comment a second on a busy petition, the copy was out of date every second, and every request that found it
so made a copy of its own: each worker thread of a process rendered the same page at once (about 90 ms of the
interpreter each), and every other request of the process, a `/healthz` included, waited behind them, 400-900 ms
a time. Now the first makes it and the others wait for it, then use it; what they show is as fresh as before."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.petitions import page_cache
from tests import live_server

PETITION = "Stop recording our screens to train AI"  # demo: open, a short discussion
READERS = ("ben", "chen", "dara")  # demo workers with no role: members, who share one copy
MAKING = 0.3  # seconds each copy takes to make here: long enough for every request to find it missing


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("herd") / "herd.db")
    try:
        yield live
    finally:
        live.stop()


def test_readers_who_find_the_copy_out_of_date_together_wait_for_one_copy(
    server: live_server.LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = live_server.petition_url(server, PETITION)
    cookies = [live_server.session_cookie(server, f"{name}@example.org") for name in READERS]
    made: list[float] = []
    lock = threading.Lock()
    shared_content = page_cache._shared_content

    def slow_shared_content(*args, **kwargs) -> str:
        with lock:
            made.append(time.monotonic())
        time.sleep(MAKING)  # the interpreter is free meanwhile: every request gets as far as it can
        return shared_content(*args, **kwargs)

    monkeypatch.setattr(page_cache, "_shared_content", slow_shared_content)
    page_cache.copies_of(server.app).clear()

    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = list(
            pool.map(lambda cookie: _read(url, cookie), [cookies[number % len(cookies)] for number in range(8)])
        )
    assert len(made) == 1, f"{len(made)} copies made for 8 readers at once"
    for html in pages:
        assert PETITION in html and 'action="/signout"' in html  # the petition, for a signed-in reader
        assert page_cache.CSRF_PLACEHOLDER not in html and "<!--reader:" not in html  # their own parts filled in


@pytest.fixture(scope="module")
def serving_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    """The demo as production serves it: a members' copy may serve on for 5 s (`shared_page_seconds`)."""
    live = live_server.serve_demo(tmp_path_factory.mktemp("herd") / "serving.db", shared_page_seconds=5)
    try:
        yield live
    finally:
        live.stop()


def _comment(server: live_server.LiveServer, url: str, body: str) -> None:
    """A comment posted through the service on the server's database, by a worker who is not one of the readers."""
    from app.models.petitions import Petition
    from tests import factories

    with server.app.state.write_sessionmaker() as db:
        petition = db.get_one(Petition, int(url.rsplit("/", 1)[1]))
        factories.comment(db, server.app.state.runtime, petition, body=body)


def test_readers_who_arrive_while_the_copy_is_made_are_answered_from_the_one_before(
    serving_on: live_server.LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The herd after each comment (issue #24): with the copy out of date, every member's page went the long way (its
    session, its petition, its reader's state, in three hops to a worker thread) to wait there for the one request
    making the new copy: a quarter to a third of all page views of the viral petition. Now the first reader after the
    change makes the copy, before the route like every member's page, and those who arrive meanwhile get the copy
    before it; the next reader after it is kept sees the change."""
    server = serving_on
    url = live_server.petition_url(server, PETITION)
    chen = live_server.session_cookie(server, "chen@example.org")  # a member who has not taken part in the discussion
    page_cache.copies_of(server.app).clear()
    body = "The canteen closes before the night shift has its break."
    assert body not in _read(url, chen)  # the copy, made
    _comment(server, url, body)
    # The copy is 3.5 s old from here on: old enough to be made again (younger ones serve on: `previous`), still
    # within the 5 s it may serve for.
    monkeypatch.setattr(page_cache.copies_of(server.app), "clock", lambda: time.monotonic() + 3.5)

    making = threading.Event()
    shared_content = page_cache._shared_content
    page = page_cache.page
    routed: list[int] = []

    def slow_shared_content(*args, **kwargs) -> str:
        making.set()
        time.sleep(MAKING)
        return shared_content(*args, **kwargs)

    def counted_page(**kwargs):
        routed.append(1)
        return page(**kwargs)

    from app.routes import petition_reader

    answered_here: list[bool] = []
    fast_path = petition_reader._page

    def spied_page(*args):
        response = fast_path(*args)
        answered_here.append(response is not None)
        return response

    monkeypatch.setattr(page_cache, "_shared_content", slow_shared_content)
    monkeypatch.setattr(page_cache, "page", counted_page)
    monkeypatch.setattr(petition_reader, "_page", spied_page)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(_read, url, chen)
        assert making.wait(10)  # the first reader after the comment makes the copy
        meanwhile = list(pool.map(lambda _: _read(url, chen), range(7)))
        made = first.result()
    assert len(routed) == 1, f"{len(routed)} of 8 page views made or waited for a copy"
    # Not one went the route: the page that makes the copy makes it before the route, without its three hops.
    assert answered_here == [True] * 8
    assert body in made
    for html in meanwhile:
        assert body not in html  # the copy before: the comment shows at most a copy's making later
        assert PETITION in html and 'action="/signout"' in html
        assert page_cache.CSRF_PLACEHOLDER not in html and "<!--reader:" not in html
    assert body in _read(url, chen)


def _read(url: str, cookie) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.addheaders = [("Cookie", f"{cookie['name']}={cookie['value']}")]
    with opener.open(url, timeout=30) as answer:
        return answer.read().decode()


def _row(**changed: object) -> tuple[object, ...]:
    """A petition's row as `page_cache.row_of` gives it, with some columns set."""
    from sqlalchemy import inspect

    from app.models.petitions import Petition

    return tuple(changed.get(column.key, column.key) for column in inspect(Petition).column_attrs)


def test_the_copy_before_answers_only_for_a_discussion_or_a_count_and_within_the_freshness() -> None:
    """`PageCopies.previous`, the copy a member's page gets while another request makes the current one."""
    now = [100.0]
    copies = page_cache.PageCopies(count_seconds=5.0)
    copies.clock = lambda: now[0]
    key, old = (1, page_cache.MEMBER, "branding"), _row(signature_count=10, comment_count=3)
    copy = page_cache._Copy(version=7, row=old, content="", context={}, made=now[0], content_version=2)
    copies.keep(key, copy)
    newer = _row(signature_count=12, comment_count=4)  # two signatures and a comment since
    closed = _row(signature_count=12, comment_count=4, state="closed")
    # A young copy serves on without a claim: the members' copy is made again at most every 5 - 2 = 3 s, however
    # often the discussion moves (before, the first reader after each comment made a new one).
    assert copies.previous(key, newer) is copy
    assert copies.previous(key, newer) is copy
    assert copies.previous(key, closed) is None  # the petition's own row changed: at once, whoever makes it
    now[0] = copy.made + 5.0 - page_cache.CLAIM_SECONDS
    assert copies.previous(key, newer) is None  # the first reader after that makes the copy
    assert copies.previous(key, newer) is copy  # the others meanwhile get the one before
    assert copies.previous((1, page_cache.PUBLIC, "branding"), newer) is None  # members' copies only
    assert copies.previous(key, closed) is None
    now[0] = copy.made + 5.1
    assert copies.previous(key, newer) is None  # older than the freshness: never, claimed or not
    copies.keep(key, page_cache._Copy(version=9, row=newer, content="", context={}, made=now[0], content_version=4))
    later = _row(signature_count=13, comment_count=5)
    now[0] += 5.0 - page_cache.CLAIM_SECONDS
    assert copies.previous(key, later) is None  # a new copy kept: the next change is claimed anew
    assert page_cache.PageCopies(count_seconds=0.0).previous(key, newer) is None  # not when copies serve exactly


def test_a_claim_goes_with_the_copy_it_replaces() -> None:
    """A claim holds the copy it replaces: once that copy is pushed out by busier petitions' copies, so is the
    claim, or the number of copies kept would not be bounded."""
    copies = page_cache.PageCopies(count_seconds=5.0)
    copies.clock = lambda: 104.0  # the copies made at 100.0: old enough to be made again
    row = _row(signature_count=1)

    def copy() -> page_cache._Copy:
        return page_cache._Copy(version=1, row=row, content="", context={}, made=100.0, content_version=1)

    key = (1, page_cache.MEMBER, "branding")
    copies.keep(key, copy())
    assert copies.previous(key, _row(signature_count=2)) is None  # claimed
    assert key in copies._claims
    for other in range(2, page_cache.MAX_COPIES + 2):
        copies.keep((other, page_cache.MEMBER, "branding"), copy())
    assert key not in copies._claims
