"""Replies in place (issue #22): with JavaScript, Reply opens a form under the comment on the discussion, and the
comment's own page posts its reply form without leaving it (comments.js); without JavaScript both lead to and post
from the comment's page, as before. An anonymous reply still leaves from the comment's page alone, without cookies,
into its batch, and nothing signed in goes with it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests import accessibility, live_server
from tests.test_browser_anonymous_comments import open_discussion, signed_in

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: open, anonymous comments allowed, a short discussion
OTHERS_COMMENT = "Has anyone asked the privacy team?"  # Ben's, in the demo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("replies") / "replies.db",
        anonymous_batch_seconds=3600,
        anonymous_max_delay_seconds=3600,
        shared_page_seconds=0,
    )
    try:
        yield live
    finally:
        live.stop()


def comment_id(page, text: str) -> int:
    item = page.locator("#discussion li.comment", has_text=text).first
    return int(str(item.get_attribute("id")).removeprefix("comment-"))


def test_on_the_discussion_reply_opens_a_form_under_the_comment_and_posts_in_place(person, server) -> None:
    from playwright.sync_api import expect

    dara = signed_in(person, "dara")
    dara.goto(live_server.petition_url(server, PETITION))
    dara.evaluate("window.stillHere = true")
    parent = comment_id(dara, OTHERS_COMMENT)
    card = dara.locator(f"#comment-{parent}")
    card.locator(":scope > article").get_by_role("link", name=re.compile(r"^Reply")).click()
    form = card.locator(":scope > form.reply-in-place")
    box = form.get_by_label("Your reply")
    expect(box).to_be_focused()
    # Its own ids, and a way to the comment's page for an anonymous reply.
    expect(form.get_by_role("link", name=re.compile("reply anonymously"))).to_have_attribute(
        "href", f"/comments/{parent}#reply"
    )
    assert not (found := accessibility.violations(dara)), accessibility.describe(found)

    box.fill("I will raise it at **the Thursday meeting**.")
    form.get_by_role("button", name="Post reply").click()
    expect(dara.locator("#comments-announce")).to_contain_text("Posted: your reply is under the comment it answers")
    reply = card.locator(":scope > ol.replies > li.comment", has_text="I will raise it at")
    expect(reply.locator(".comment-body strong")).to_have_text("the Thursday meeting")  # rendered by the server
    expect(reply).to_contain_text("Dara Novak")
    expect(reply.locator(":scope > article")).to_be_focused()
    expect(form).to_have_count(0)
    dara.wait_for_url(re.compile(r"#comment-\d+$"))
    assert dara.evaluate("window.stillHere === true"), "replying loaded another page"
    dara.reload()
    expect(dara.locator(f"#comment-{parent} > ol.replies > li.comment", has_text="I will raise it at")).to_have_count(1)

    # Cancel closes a form, and gives focus back to the Reply link.
    link = card.locator(":scope > article").get_by_role("link", name=re.compile(r"^Reply"))
    link.click()
    card.locator(":scope > form.reply-in-place").get_by_role("button", name="Cancel").click()
    expect(card.locator(":scope > form.reply-in-place")).to_have_count(0)
    expect(link).to_be_focused()


def test_on_the_comments_page_the_reply_form_posts_in_place_and_a_refusal_says_why(person, server) -> None:
    from playwright.sync_api import expect

    chen = signed_in(person, "chen")
    chen.goto(live_server.petition_url(server, PETITION))
    parent = comment_id(chen, OTHERS_COMMENT)
    open_discussion(chen, f"/comments/{parent}")
    chen.evaluate("window.stillHere = true")
    chen.get_by_label("Your reply").fill("The privacy team said they would look at it.")
    chen.get_by_role("button", name="Post reply", exact=True).click()
    expect(chen.locator("#comments-announce")).to_contain_text("Posted: your reply is under the comment it answers")
    expect(chen.locator(f"#comment-{parent} > ol.replies > li.comment", has_text="would look at it")).to_contain_text(
        "Chen Wei"
    )
    expect(chen.get_by_label("Your reply")).to_have_value("")
    assert chen.evaluate("window.stillHere === true"), "replying loaded another page"

    # Refused by the server (nothing but spaces): the form goes the usual way, and the page says why.
    chen.get_by_label("Your reply").fill("   ")
    chen.get_by_role("button", name="Post reply", exact=True).click()
    expect(chen.locator("main [role=alert]").first).to_be_visible()
    assert chen.evaluate("window.stillHere === undefined"), "the refusal came back as a page"


def test_an_anonymous_reply_goes_alone_without_cookies(person, server) -> None:
    from playwright.sync_api import expect

    ana = signed_in(person, "ana")
    ana.goto(live_server.petition_url(server, PETITION))
    parent = comment_id(ana, OTHERS_COMMENT)
    open_discussion(ana, f"/comments/{parent}")
    sent: list = []
    ana.on("request", lambda request: sent.append(request))
    ana.get_by_label("Your reply").fill("Asked them today; still no answer.")
    ana.get_by_label("Post anonymously", exact=True).check()
    confirm = ana.get_by_label("I understand: post anonymously anyway")
    if confirm.is_visible():
        confirm.check()  # fewer than k colleagues hold the credential
    ana.get_by_role("button", name="Post reply anonymously").click()
    expect(ana.locator("[data-anonymous-status]")).to_contain_text("It will appear as Colleague ", use_inner_text=True)
    [anonymous] = [request for request in sent if request.url.endswith("/api/v1/anonymous/comments")]
    assert "cookie" not in anonymous.all_headers()
    named = [
        request.url
        for request in sent
        if re.search(r"/api/v1/petitions/\d+/comments$|/comments/\d+$", request.url.split("?")[0])
    ]
    assert not named, f"a signed-in request went with the anonymous reply: {named}"
