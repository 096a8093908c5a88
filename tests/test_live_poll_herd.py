"""An open page's live poll is answered the long way by one request at a time (issue #24's viral petition).

Every open page of a public petition gets the same kept answer (app/core/livepolls.py) until a comment moves the
discussion's version. Then the next poll goes to the route for a new answer; under the viral petition's load that
took a few hundred milliseconds, and every poll that arrived meanwhile went the long way too: 40 % of all polls in
the small scenario, dozens after each comment. Then they waited for the first one's answer (200-300 ms each under
that load, and the open pages fell behind); now they get the answer before it, and the poll that makes the new one,
and every poll after, gets the new one."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from app.comments import repository
from tests import live_server

PETITION = "Stop recording our screens to train AI"  # demo: open, public, a short discussion
ANSWERING = 0.3  # seconds the route takes here: long enough for every poll to arrive meanwhile


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("herd") / "polls.db", shared_page_seconds=5)
    try:
        yield live
    finally:
        live.stop()


def test_polls_that_find_the_kept_answer_out_of_date_together_wait_for_one_new_answer(
    server: live_server.LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = live_server.petition_url(server, PETITION)
    petition_id = int(url.rsplit("/", 1)[1])

    def poll() -> dict[str, object]:
        return live_server.get_json(server, f"/petitions/{petition_id}/live?after=")

    first = poll()  # made and kept
    answered: list[float] = []
    lock = threading.Lock()
    count_newer = repository.count_newer

    def slow_count_newer(**kwargs) -> int:
        with lock:
            answered.append(time.monotonic())
        time.sleep(ANSWERING)
        return count_newer(**kwargs)

    monkeypatch.setattr(repository, "count_newer", slow_count_newer)
    # What a comment does to the kept answer: the discussion's version moves.
    server.app.state.runtime.page_versions.content_counters.bump([petition_id])
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: poll(), range(8)))
    assert len(answered) == 1, f"{len(answered)} polls went to the route for 8 at once"
    assert all(answer == first for answer in answers)  # nothing else changed: the same count, state and comments


def test_polls_of_a_petition_only_some_may_read_are_never_made_one_at_a_time(
    server: live_server.LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its answers are never kept, so there is nothing to wait for: each poll goes the long way at once."""
    from sqlalchemy import select

    from app.models.petitions import Petition

    with server.app.state.sessionmaker() as db:
        petition_id = db.scalars(select(Petition.id).where(Petition.title == "Quiet rooms on every floor")).one()
    cookie = live_server.session_cookie(server, "chen@example.org")  # its organizer; in moderation, nobody else's
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.addheaders = [("Cookie", f"{cookie['name']}={cookie['value']}")]

    def poll() -> int:
        with opener.open(f"{server.base_url}/petitions/{petition_id}/live?after=", timeout=30) as answer:
            return json.loads(answer.read())["new_comments"]

    poll()
    inside, most = [0], [0]
    lock = threading.Lock()
    count_newer = repository.count_newer

    def slow_count_newer(**kwargs) -> int:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(ANSWERING)
        with lock:
            inside[0] -= 1
        return count_newer(**kwargs)

    monkeypatch.setattr(repository, "count_newer", slow_count_newer)
    server.app.state.runtime.page_versions.content_counters.bump([petition_id])
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda _: poll(), range(4))) == [0, 0, 0, 0]
    assert most[0] > 1  # answered side by side, not one after another


def test_polls_that_arrive_while_the_new_answer_is_made_get_the_one_before(
    server: live_server.LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attacker's method is the viral petition's: a comment, then polls while the new answer is being made. The
    route is held until the other polls are answered, so a poll that waited for it would time out here."""
    from app.models.petitions import Petition
    from tests import factories

    url = live_server.petition_url(server, PETITION)
    petition_id = int(url.rsplit("/", 1)[1])

    def poll(timeout: float = 30) -> dict[str, Any]:
        return live_server.get_json(server, f"/petitions/{petition_id}/live?after=", timeout=timeout)

    before = poll()  # made and kept
    with server.app.state.write_sessionmaker() as db:
        factories.comment(
            db, server.app.state.runtime, db.get_one(Petition, petition_id), body="The lifts are out again."
        )
    answering, release = threading.Event(), threading.Event()
    count_newer = repository.count_newer

    def held_count_newer(**kwargs) -> int:
        answering.set()
        release.wait(10)
        return count_newer(**kwargs)

    monkeypatch.setattr(repository, "count_newer", held_count_newer)
    with ThreadPoolExecutor(max_workers=8) as pool:
        maker = pool.submit(poll)
        assert answering.wait(10)  # the first poll after the comment is making the new answer
        try:
            meanwhile = list(pool.map(lambda _: poll(timeout=3), range(7)))
        finally:
            release.set()
        made = maker.result()
    assert meanwhile == [before] * 7  # the answer before, while the new one was made
    assert made["new_comments"] == before["new_comments"] + 1
    assert poll() == made
