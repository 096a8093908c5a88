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

    def read(cookie) -> str:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.addheaders = [("Cookie", f"{cookie['name']}={cookie['value']}")]
        with opener.open(url, timeout=30) as answer:
            return answer.read().decode()

    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = list(pool.map(read, [cookies[number % len(cookies)] for number in range(8)]))
    assert len(made) == 1, f"{len(made)} copies made for 8 readers at once"
    for html in pages:
        assert PETITION in html and 'action="/signout"' in html  # the petition, for a signed-in reader
        assert page_cache.CSRF_PLACEHOLDER not in html and "<!--reader:" not in html  # their own parts filled in
