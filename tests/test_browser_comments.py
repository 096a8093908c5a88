"""In a real browser: a discussion from the first comment to a moderator hiding one, and live updates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: open, anonymous comments allowed, a short discussion


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "comments.db", comment_poll_seconds=0.5)
    try:
        yield live
    finally:
        live.stop()


def open_petition(page: Page) -> None:
    """The petition page, from the list, once its scripts have run. Posting in place is comments.js's: a click on
    Post before it ran (its download still under way on a busy machine) sent the form without script, and the
    announcement the test waits for never came (issue #23's flake)."""
    page.goto("/petitions")
    page.locator("main").get_by_role("link", name=PETITION).click()
    page.wait_for_url(re.compile(r"/petitions/\d+$"))  # and its load event, which comes after deferred scripts ran


def comment_card(page: Page, text: str):
    return page.locator("li.comment", has_text=text).last


def test_post_reply_endorse_edit_delete_flag_and_hide(person) -> None:
    from playwright.sync_api import expect

    # Chen comments from the petition page.
    chen = person("chen")
    open_petition(chen)
    discussion = chen.locator("#discussion")
    expect(discussion).to_contain_text("Has anyone asked the privacy team?")  # the demo's discussion
    discussion.get_by_label("Your comment").fill("Recording *everything* is not proportionate.")
    discussion.get_by_role("button", name="Post comment").click()
    # Posted in place (comments.js): announced, and the address names the new comment.
    expect(chen.locator("#comments-announce")).to_contain_text("Posted: your comment is at the top")
    chen.wait_for_url(re.compile(r"#comment-\d+$"))
    mine = comment_card(chen, "is not proportionate")
    expect(mine.locator("em")).to_have_text("everything")

    # Dara replies to it in place: Reply opens a form under the comment (comments.js).
    dara = person("dara")
    dara.goto(chen.url.split("#")[0])
    comment_card(dara, "is not proportionate").get_by_role("link", name="Reply").click()
    dara.get_by_label("Your reply").fill("Agreed, and nobody asked us.")
    dara.get_by_role("button", name="Post reply").click()
    expect(dara.locator("#comments-announce")).to_contain_text("Posted: your reply is under the comment it answers")
    expect(dara.locator("main")).to_contain_text("Agreed, and nobody asked us.")

    # Dara endorses Chen's comment; the button says so and the count moves.
    card = comment_card(dara, "is not proportionate").locator("article").first
    card.get_by_role("button", name="Endorse").click()
    card = comment_card(dara, "is not proportionate").locator("article").first
    expect(card.get_by_role("button", name="Endorse")).to_have_attribute("aria-pressed", "true")
    expect(card).to_contain_text("1 endorsement")

    # Chen edits his comment: it says "edited".
    chen.goto(f"{chen.url.split('?')[0].split('#')[0]}")
    comment_card(chen, "is not proportionate").locator("article").first.get_by_role(
        "link", name="Edit or delete"
    ).click()
    chen.get_by_label("Your comment").fill("Recording *everything* is not proportionate to any goal.")
    chen.get_by_role("button", name="Save the change").click()
    expect(chen.locator("main .flashes")).to_contain_text("Your comment is updated.")
    expect(chen.locator("main")).to_contain_text("edited")

    # Chen posts a second comment, then deletes it: the thread keeps a marker.
    open_petition(chen)
    chen.locator("#discussion").get_by_label("Your comment").fill("Posted by mistake.")
    chen.locator("#discussion").get_by_role("button", name="Post comment").click()
    comment_card(chen, "Posted by mistake.").get_by_role("link", name="Edit or delete").click()
    chen.get_by_role("button", name="Delete my comment").click()
    expect(chen.locator("main .flashes")).to_contain_text("Your comment is deleted.")
    expect(chen.locator("main")).to_contain_text("[deleted by author]")

    # Dara flags the demo's anonymous comment; Morgan, a moderator, hides it with a reason.
    open_petition(dara)
    comment_card(dara, "My team lead reads the recordings").get_by_role("link", name="Flag").click()
    dara.get_by_label("Shares someone's personal information").check()
    dara.get_by_label("Anything moderators should know").fill("It names a team lead's practice")
    dara.get_by_role("button", name="Flag it").click()
    expect(dara.locator("main .flashes")).to_contain_text("moderators will look at it")

    morgan = person("morgan")
    morgan.goto("/moderation")
    morgan.get_by_role("link", name="Flagged comments").click()
    flagged = morgan.locator("article.flagged", has_text="My team lead reads the recordings")
    expect(flagged).to_contain_text("It names a team lead's practice")
    flagged.get_by_label("Public reason").fill("Identifies a colleague")
    flagged.get_by_role("button", name="Hide").click()
    expect(morgan.locator("main .flashes")).to_contain_text("Comment hidden")

    open_petition(dara)
    expect(dara.locator("#discussion")).to_contain_text("[hidden by moderators: Identifies a colleague]")
    expect(dara.locator("#discussion")).not_to_contain_text("My team lead reads the recordings")


def test_new_comments_appear_without_a_reload(person) -> None:
    from playwright.sync_api import expect

    reader = person("ana")
    open_petition(reader)
    reader.locator("#discussion").get_by_role("link", name="Newest").click()
    reader.wait_for_url(re.compile(r"sort=newest"))  # the reader's page is older than the comment to come
    writer = person("ben")
    open_petition(writer)
    writer.locator("#discussion").get_by_label("Your comment").fill("Fresh from another desk.")
    writer.locator("#discussion").get_by_role("button", name="Post comment").click()
    # No reload on the reader's side: the page asks for what is new.
    expect(reader.locator("ol.comments")).to_contain_text("Fresh from another desk.", timeout=10_000)
    expect(reader.locator("#comments-live")).to_contain_text("1 new comment added.")

    # On the petition page (ordered by "top"), the reader is told by the shared count, and the comment is fetched
    # only when the reader asks for it.
    open_petition(reader)
    writer.locator("#discussion").get_by_label("Your comment").fill("And one more.")
    writer.locator("#discussion").get_by_role("button", name="Post comment").click()
    show = reader.locator("#comments-live").get_by_role("button", name="1 new comment: show them")
    expect(show).to_be_visible(timeout=10_000)
    expect(reader.locator("ol.comments")).not_to_contain_text("And one more.")
    show.click()
    expect(reader.locator("ol.comments")).to_contain_text("And one more.")
