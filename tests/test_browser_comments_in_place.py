"""With JavaScript, a worker posts a named comment and endorses one without leaving the page (comments.js), and a
screen reader hears it; without JavaScript, the same forms post and come back, as they always did."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests import live_server

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: open, a short discussion
OTHERS_COMMENT = "Has anyone asked the privacy team?"  # Ben's, in the demo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("in-place") / "comments.db")
    try:
        yield live
    finally:
        live.stop()


def test_with_javascript_posting_and_endorsing_happen_in_place(person, server) -> None:
    from playwright.sync_api import expect

    dara = person("dara")
    dara.goto(live_server.petition_url(server, PETITION))
    # A mark on this very page: it survives only if the browser never loads another.
    dara.evaluate("window.stillHere = true")
    discussion = dara.locator("#discussion")
    announce = dara.locator("#comments-announce")
    expect(announce).to_have_attribute("role", "status")

    discussion.get_by_label("Your comment").fill("Posted **in place**, with my name.")
    discussion.get_by_role("button", name="Post comment").click()
    expect(announce).to_contain_text("Posted: your comment is at the top")
    mine = discussion.locator("li.comment", has_text="with my name.")
    expect(mine.locator(".comment-body strong")).to_have_text("in place")  # rendered by the server, Markdown and all
    expect(mine).to_contain_text("Dara Novak")
    expect(discussion.get_by_label("Your comment")).to_have_value("")
    dara.wait_for_url(re.compile(r"#comment-\d+$"))
    assert dara.evaluate("window.stillHere === true"), "posting loaded another page"

    # She withdraws her endorsement of Ben's comment (the demo has her endorse it), and endorses it again: the
    # button, the count and the announcement follow.
    card = discussion.locator("li.comment", has_text=OTHERS_COMMENT).locator("article").first
    endorse = card.get_by_role("button", name="Endorse")
    expect(endorse).to_have_attribute("aria-pressed", "true")
    expect(card.locator(".endorsements")).to_have_text("1 endorsement")
    endorse.click()
    expect(endorse).to_have_attribute("aria-pressed", "false")
    expect(card.locator(".endorsements")).to_have_text("0 endorsements")
    expect(announce).to_have_text("Endorsement withdrawn.")
    endorse.click()
    expect(endorse).to_have_attribute("aria-pressed", "true")
    expect(card.locator(".endorsements")).to_have_text("1 endorsement")
    expect(announce).to_have_text("You endorse this comment.")
    endorse.click()
    expect(endorse).to_have_attribute("aria-pressed", "false")
    assert dara.evaluate("window.stillHere === true"), "endorsing loaded another page"

    # What the page showed is what was saved.
    dara.reload()
    card = dara.locator("#discussion li.comment", has_text=OTHERS_COMMENT).locator("article").first
    expect(card.get_by_role("button", name="Endorse")).to_have_attribute("aria-pressed", "false")
    expect(card.locator(".endorsements")).to_have_text("0 endorsements")
    expect(dara.locator("#discussion li.comment", has_text="with my name.")).to_have_count(1)


def test_a_refused_comment_falls_back_to_the_form_and_says_why(person, server) -> None:
    from playwright.sync_api import expect

    chen = person("chen")
    chen.goto(live_server.petition_url(server, PETITION))
    discussion = chen.locator("#discussion")
    # Only spaces: the browser lets it through (the field is filled), the server refuses it, in words.
    discussion.get_by_label("Your comment").fill("   ")
    discussion.get_by_role("button", name="Post comment").click()
    chen.wait_for_url(re.compile(r"/petitions/\d+/comments$"))
    expect(chen.locator("main")).to_contain_text("Please check what you entered")
    expect(chen.locator("li.comment", has_text=OTHERS_COMMENT).first).to_be_visible()  # the discussion, kept


def test_without_javascript_the_forms_post_and_come_back(chromium, server) -> None:
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    context = chromium.new_context(base_url=server.base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/signin")
        page.locator("main").get_by_label("Work email address").fill("ana@example.org")
        page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        page.goto(live_server.petition_url(server, PETITION))
        discussion = page.locator("#discussion")
        discussion.get_by_label("Your comment").fill("Posted the old way.")
        discussion.get_by_role("button", name="Post comment").click()
        page.wait_for_url(re.compile(r"/petitions/\d+/comments\?sort=newest#comment-\d+$"))
        expect(page.locator("main .flashes")).to_contain_text("Your comment is posted.")
        expect(page.locator("li.comment", has_text="Posted the old way.")).to_contain_text("Ana Silva")

        # Ana has not endorsed Ben's comment (only Dara has, in the demo).
        card = page.locator("li.comment", has_text=OTHERS_COMMENT).locator("article").first
        card.get_by_role("button", name="Endorse").click()
        page.wait_for_url(re.compile(r"/comments/\d+$"))
        expect(page.locator("main .flashes")).to_contain_text("You endorse this comment.")
        card = page.locator("li.comment", has_text=OTHERS_COMMENT).locator("article").first
        expect(card.get_by_role("button", name="Endorse")).to_have_attribute("aria-pressed", "true")
    finally:
        context.close()
