"""The discussion's count-only poll (issue #24's viral petition): how many comments arrived since the page's newest,
the same answer for every reader, kept per (petition, `after`, content version) like the tally's
(app/core/livepolls.py), so that while no comment changes it is answered without the database; the comments
themselves are fetched only when the reader asks (app/static/comments.js)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.comments import anonymous, moderation
from app.comments import service as comments
from app.comments.queue import comment_queue
from app.comments.repository import time_cursor
from app.core.clock import to_the_hour
from app.core.livepolls import SharedTally
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.accounts import User
from app.models.comments import Comment
from app.models.petitions import Petition
from app.moderation import service as takedowns
from tests import factories, live_server
from tests.conftest import Browser, counting_statements, make_settings, sign_in_as
from tests.test_viral_freshness import sign

if TYPE_CHECKING:
    from playwright.sync_api import Page

NewBrowser = Callable[[], Browser]
FRESH = 5.0  # shared_page_seconds of these tests: how long a kept answer may serve while its version holds


class Ticking:
    """The kept answers' clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Anonymous comments wait for a batch, as in production.
    return make_settings(database_url, shared_page_seconds=FRESH, anonymous_batch_seconds=3600)


@pytest.fixture
def polls(app: FastAPI, browser: Browser) -> SharedTally:
    """The app's kept answers, emptied (the app is shared, petition ids come round on SQLite), on a hand clock."""
    browser.get("/api/v1/csrf")  # builds the middleware stack
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, SharedTally):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, SharedTally)
    layer.clear()
    layer.clock = Ticking()
    return layer


class Poll:
    """One of the two polls that answer the discussion's count: its own (the discussion pages, `/comments/count`),
    and the petition page's one poll for the tally and the count (`/live`). Both must keep the same promises."""

    def __init__(self, path: str, field: str) -> None:
        self.path, self.field = path, field

    def url(self, petition, after: str = "") -> str:
        return f"/petitions/{petition.id}/{self.path}?after={after}"

    def count_in(self, answer) -> int:
        assert answer.status_code == 200, answer.text
        return answer.json()[self.field]

    def count(self, browser: Browser, petition, after: str = "") -> int:
        return self.count_in(browser.get(self.url(petition, after)))


@pytest.fixture(params=[Poll("comments/count", "count"), Poll("live", "new_comments")], ids=["count", "live"])
def poll(request) -> Poll:
    return request.param


def reader(db: Session, new_browser: NewBrowser, name: str) -> Browser:
    browser = sign_in_as(new_browser(), db, factories.worker(db, name=name))
    browser.get("/api/v1/csrf")  # its cookies set: an answer that sets one is never kept
    return browser


@pytest.mark.one_database
def test_the_count_moves_at_once_after_a_comment(
    db: Session, rt: Runtime, new_browser: NewBrowser, polls: SharedTally, poll: Poll
) -> None:
    petition = factories.open_petition(db, rt)
    first = reader(db, new_browser, "First reader")
    assert poll.count(first, petition) == 0
    assert poll.count(first, petition) == 0  # kept now
    factories.comment(db, rt, petition, body="The night shift was never asked.")
    assert poll.count(first, petition) == 1  # the content version moved: within the freshness, at once
    reply = factories.comment(db, rt, petition, body="Nor the weekend team.", parent=petition_comment(db, petition))
    assert poll.count(first, petition) == 2  # replies are counted too, as the poll always did
    assert poll.count(first, petition, after=cursor_of(reply)) == 0  # after the page's newest: nothing new


def petition_comment(db: Session, petition: Petition) -> Comment | None:
    return db.scalars(select(Comment).where(Comment.petition_id == petition.id).order_by(Comment.id)).first()


def cursor_of(comment: Comment) -> str:
    return time_cursor(comment)


@pytest.mark.one_database
def test_never_counts_a_hidden_deleted_or_unpublished_comment(
    db: Session, rt: Runtime, new_browser: NewBrowser, polls: SharedTally, poll: Poll
) -> None:
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    first = reader(db, new_browser, "First reader")
    shown = factories.comment(db, rt, petition, body="Ask the privacy team.")
    named = factories.comment(db, rt, petition, body="My team lead reads the recordings.")
    assert poll.count(first, petition) == 2
    assert poll.count(first, petition) == 2  # kept
    moderation.hide(db=db, rt=rt, comment=named, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert poll.count(first, petition) == 1  # gone from the count at once: hiding moved the content version
    comments.delete_by_author(db=db, comment=shown, user=shown_author(db, shown))
    db.commit()
    assert poll.count(first, petition) == 0  # deleted by its author: a placeholder, not a new comment
    # An anonymous comment waiting for its batch is nobody's to count; once the batch writes it, everyone's.
    message, signature = factories.discussion_credential(db, rt, petition)
    waiting = anonymous.submit(
        db=db, rt=rt, petition_id=petition.id, message=message, signature=signature, body="Quietly.", parent_id=None
    )
    db.commit()
    assert poll.count(first, petition) == 0
    # The batch, written here in the test's transaction (taken from the queue: the app's shutdown would write it
    # again, on a connection of its own).
    assert comment_queue(rt).take() == [waiting]
    anonymous.write_group(db, petition, [waiting], to_the_hour(rt.clock.now()))
    db.commit()
    assert poll.count(first, petition) == 1


def shown_author(db: Session, comment: Comment) -> User:
    return db.get_one(User, comment.author_id)


@pytest.mark.one_database
def test_the_answer_is_the_same_bytes_for_every_reader(
    db: Session, rt: Runtime, new_browser: NewBrowser, polls: SharedTally, poll: Poll
) -> None:
    petition = factories.open_petition(db, rt)
    factories.comment(db, rt, petition, body="A first point.")
    moderator = sign_in_as(new_browser(), db, factories.moderator(db))
    moderator.get("/api/v1/csrf")
    readers = [reader(db, new_browser, "Ana"), reader(db, new_browser, "Ben"), moderator, new_browser()]
    polls.clear()
    answers = [browser.get(poll.url(petition)) for browser in readers]
    polls.clear()  # and each made afresh, for its own reader
    answers += [browser.get(poll.url(petition)) for browser in readers]
    bodies = {answer.content for answer in answers}
    assert len(bodies) == 1 and poll.count_in(answers[0]) == 1
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    for answer in answers:
        assert "csrf" not in answer.text.lower()
        assert not any(name.startswith("x-new") for name in answer.headers)


@pytest.mark.one_database
def test_no_statement_while_the_discussion_is_unchanged(
    db: Session, rt: Runtime, new_browser: NewBrowser, connection, polls: SharedTally, poll: Poll
) -> None:
    petition = factories.open_petition(db, rt)
    factories.comment(db, rt, petition, body="A first point.")
    first, other = reader(db, new_browser, "First reader"), reader(db, new_browser, "Other reader")
    answer = first.get(poll.url(petition))  # made and kept
    assert answer.status_code == 200
    sign(db, rt, petition, "Signer")  # a signature moves the page version, not the discussion's
    with counting_statements(connection) as statements:
        shared = other.get(poll.url(petition))
        anyone = new_browser().get(poll.url(petition))
        unchanged = first.get(poll.url(petition), headers={"If-None-Match": answer.headers["ETag"]})
    assert statements == []  # no session, user, petition or count read: the kept answer
    assert shared.content == anyone.content == answer.content
    assert unchanged.status_code == 304
    with counting_statements(connection) as statements:
        assert poll.count_in(other.get(poll.url(petition) + "&page=2")) == 1
    assert statements  # not the page's own question: answered, never kept (a key is only what the route accepts)
    polls.clock.now += FRESH  # type: ignore[attr-defined]
    with counting_statements(connection) as statements:
        assert poll.count(other, petition) == 1
    assert statements  # older than the freshness: made again


@pytest.mark.one_database
def test_a_petition_only_some_may_read_is_counted_for_each_and_never_shared(
    db: Session, rt: Runtime, new_browser: NewBrowser, polls: SharedTally, poll: Poll
) -> None:
    creator = factories.worker(db, name="Organizer")
    draft = factories.draft_petition(db, rt, creator=creator)
    organizer = sign_in_as(new_browser(), db, creator)
    organizer.get("/api/v1/csrf")
    assert poll.count(organizer, draft) == 0
    assert poll.count(organizer, draft) == 0
    assert new_browser().get(poll.url(draft)).status_code == 404
    stranger = reader(db, new_browser, "Stranger")
    assert stranger.get(poll.url(draft)).status_code == 404


@pytest.mark.one_database
@pytest.mark.parametrize("after", ["nonsense", "1~x", "9" * 81])
def test_a_broken_place_is_refused_in_plain_words(
    db: Session, rt: Runtime, browser: Browser, polls: SharedTally, poll: Poll, after: str
) -> None:
    petition = factories.open_petition(db, rt)
    answer = browser.get(poll.url(petition, after))
    assert 400 <= answer.status_code < 500
    assert answer.status_code == browser.get(poll.url(petition, after)).status_code  # never kept, never a 500


# The petition page's one poll: the tally and the count in one answer (app/static/tally.js).


def live_url(petition, after: str | None = "") -> str:
    return f"/petitions/{petition.id}/live" + ("" if after is None else f"?after={after}")


@pytest.mark.one_database
def test_the_live_poll_answers_count_state_and_new_comments_and_its_tag_names_the_place(
    db: Session, rt: Runtime, new_browser: NewBrowser, polls: SharedTally
) -> None:
    petition = factories.open_petition(db, rt)
    comment = factories.comment(db, rt, petition, body="The night shift was never asked.")
    first = reader(db, new_browser, "First reader")
    everything = first.get(live_url(petition))
    assert everything.json() == {"signature_count": petition.signature_count, "state": "open", "new_comments": 1}
    assert first.get(live_url(petition, None)).json() == {"signature_count": petition.signature_count, "state": "open"}
    # The same version asked from another place is another answer: its tag says so, so a page whose place moved
    # (its reader showed the new comments) is never told "not modified" with the old place's count.
    place = cursor_of(comment)
    caught_up = first.get(live_url(petition, place), headers={"If-None-Match": everything.headers["ETag"]})
    assert caught_up.status_code == 200 and caught_up.json()["new_comments"] == 0
    assert caught_up.headers["ETag"] != everything.headers["ETag"]
    polls.clear()  # and without the kept answers, through the version check alone
    again = first.get(live_url(petition, place), headers={"If-None-Match": everything.headers["ETag"]})
    assert again.status_code == 200 and again.json()["new_comments"] == 0
    assert first.get(live_url(petition, place), headers={"If-None-Match": again.headers["ETag"]}).status_code == 304


@pytest.mark.one_database
def test_the_live_count_follows_signatures_within_the_freshness_and_a_hidden_petition_goes_at_once(
    db: Session, rt: Runtime, new_browser: NewBrowser, polls: SharedTally
) -> None:
    petition = factories.open_petition(db, rt)
    before = petition.signature_count
    readers = [reader(db, new_browser, "Ana"), reader(db, new_browser, "Ben"), new_browser()]
    assert {browser.get(live_url(petition)).json()["signature_count"] for browser in readers} == {before}
    sign(db, rt, petition, "Signer")
    # Within the freshness every reader may be given the kept answer; past it, every reader sees the signature.
    assert {browser.get(live_url(petition)).json()["signature_count"] for browser in readers} <= {before, before + 1}
    polls.clock.now += FRESH  # type: ignore[attr-defined]
    assert {browser.get(live_url(petition)).json()["signature_count"] for browser in readers} == {before + 1}
    takedowns.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert {browser.get(live_url(petition)).status_code for browser in readers} == {404}


# In a real browser: the second reader is told, and gets the comment when they ask.

PETITION = "Stop recording our screens to train AI"  # demo: open, a short discussion


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("browser") / "count.db", comment_poll_seconds=0.5, shared_page_seconds=FRESH
    )
    try:
        yield live
    finally:
        live.stop()


def open_petition(page: Page) -> None:
    page.goto("/petitions")
    page.locator("main").get_by_role("link", name=PETITION).click()


@pytest.mark.browser
def test_a_second_reader_is_offered_the_new_comment_and_gets_it_on_click(person) -> None:
    from playwright.sync_api import expect

    reader = person("ana")
    open_petition(reader)  # the petition page: the discussion by "top"
    writer = person("ben")
    open_petition(writer)
    writer.locator("#discussion").get_by_label("Your comment").fill("Fresh from another desk.")
    writer.locator("#discussion").get_by_role("button", name="Post comment").click()
    offer = reader.locator("#comments-live").get_by_role("button", name="1 new comment: show them")
    expect(offer).to_be_visible()
    expect(reader.locator("ol.comments")).not_to_contain_text("Fresh from another desk.")  # only counted so far
    offer.click()
    expect(reader.locator("ol.comments")).to_contain_text("Fresh from another desk.")
    expect(reader.locator("#comments-live")).to_have_text("1 new comment added.")
