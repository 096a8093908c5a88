"""In a real browser: an open petition's tally follows new signatures without a reload (app/static/tally.js), and the
same poll tells the discussion of new comments."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests import live_server

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: open, signed by Ana only


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("browser") / "tally.db", tally_poll_seconds=0.5, comment_poll_seconds=0.5
    )
    try:
        yield live
    finally:
        live.stop()


def test_the_tally_follows_new_signatures_without_a_reload(chromium, server) -> None:
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    url = live_server.petition_url(server, PETITION)
    reader = chromium.new_context(base_url=server.base_url)
    signer = chromium.new_context(base_url=server.base_url, java_script_enabled=False)
    try:
        page = reader.new_page()
        page.goto(url)
        tally = page.locator(".tally")
        expect(tally.locator(".tally-count")).to_have_text("1 signature")
        expect(tally.locator(".progress-label")).to_contain_text("99 more to reach 100")
        page.evaluate("window.notReloaded = true")

        # Chen signs from another browser, one without JavaScript.
        chen = signer.new_page()
        chen.goto("/signin")
        chen.get_by_label("Work email address").fill("chen@example.org")
        chen.get_by_label("Password").fill(DEMO_PASSWORD)
        chen.locator("main").get_by_role("button", name="Sign in").click()
        chen.wait_for_url(re.compile(r"/$"))
        chen.goto(url)
        chen.locator("#sign").get_by_role("button", name="Sign this petition").click()
        expect(chen.locator("main .flashes")).to_contain_text("Signed.")

        expect(tally.locator(".tally-count")).to_have_text("2 signatures", timeout=10_000)
        expect(tally.locator(".progress-label")).to_contain_text("98 more to reach 100")
        assert page.evaluate("document.querySelector('#progress').value") == 2
        assert page.evaluate("window.notReloaded") is True
    finally:
        reader.close()
        signer.close()


def test_one_poll_brings_the_count_and_the_new_comments_and_the_discussion_polls_alone_once_the_tally_stops(
    chromium, server, person
) -> None:
    """10,000 open pages sent two polls each, the petition's JSON and the discussion's count: one now (issue #24)."""
    from playwright.sync_api import expect

    url = live_server.petition_url(server, PETITION)
    petition_path = urlsplit(url).path
    reader = person("dara")
    polls: list[str] = []
    api_path = "/api/v1" + petition_path

    def heard(request) -> None:  # the page's polls (the wallet fetches what it needs besides)
        path = urlsplit(request.url).path
        if request.resource_type == "fetch" and (path == api_path or path.startswith(petition_path + "/")):
            polls.append(path)

    reader.on("request", heard)
    reader.goto(url)
    tally = reader.locator(".tally")
    before = int(tally.get_attribute("data-signatures") or "")
    with reader.expect_request(lambda request: "/live" in request.url):
        pass

    # Ben comments, then signs, from a browser without JavaScript.
    writer = chromium.new_context(base_url=server.base_url, java_script_enabled=False)
    try:
        writer.add_cookies([live_server.session_cookie(server, "ben@example.org")])
        ben = writer.new_page()
        ben.goto(url)
        ben.locator("#discussion").get_by_label("Your comment").fill("Who may read the recordings?")
        ben.locator("#discussion").get_by_role("button", name="Post comment").click()
        ben.goto(url)
        ben.locator("#sign").get_by_role("button", name="Sign this petition").click()
        expect(ben.locator("main .flashes")).to_contain_text("Signed.")
    finally:
        writer.close()
    offer = reader.locator("#comments-live").get_by_role("button", name="1 new comment: show them")
    expect(offer).to_be_visible()
    expect(tally.locator(".tally-count")).to_have_text(f"{before + 1} signatures")
    assert set(polls) == {petition_path + "/live"}, polls  # neither the petition's JSON nor the count on its own
    assert len(polls) >= 2

    # The petition closes: the tally's poll stops, and the discussion asks for its count on its own from then on.
    closed = {"signature_count": before + 1, "state": "closed", "new_comments": 1}
    reader.route(
        "**/live?*", lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(closed))
    )
    with reader.expect_request(lambda request: "/comments/count" in request.url):
        pass
    lives = polls.count(petition_path + "/live")
    with reader.expect_request(lambda request: "/comments/count" in request.url):
        pass
    with reader.expect_request(lambda request: "/comments/count" in request.url):
        pass
    assert polls.count(petition_path + "/live") == lives  # stopped: three of the discussion's polls since
    expect(offer).to_be_visible()  # the same offer, not made again
