"""In a real browser: a worker drafts a petition, two colleagues co-sponsor it through the private link, a
moderator opens it, and it appears in search and among the newest."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests import live_server

pytestmark = pytest.mark.browser

TITLE = "No webcam monitoring during remote meetings"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "petitions.db", sponsors_required=2)
    try:
        yield live
    finally:
        live.stop()


def test_draft_sponsor_moderate_and_discover(person) -> None:
    from playwright.sync_api import expect

    # Dara drafts a petition in two stages; similar open petitions are shown before the background.
    dara = person("dara")
    dara.goto("/petitions/new")
    main = dara.locator("main")
    main.get_by_label("Title").fill(TITLE)
    main.get_by_label("What do you ask for?").fill("Stop recording and monitoring webcams in remote meetings.")
    main.get_by_role("button", name="Continue").click()
    expect(main.get_by_role("heading", name="These open petitions may already ask for this")).to_be_visible()
    expect(main.get_by_role("link", name="Stop recording our screens to train AI")).to_be_visible()
    main.get_by_label("Why?").fill("Webcam monitoring treats colleagues as suspects and records their homes.")
    main.get_by_label("Category").select_option("privacy")
    main.get_by_role("button", name="Save draft").click()
    expect(dara.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(main.get_by_text("Draft", exact=True)).to_be_visible()
    main.get_by_role("button", name="Freeze the text and get sponsors").click()
    link = main.get_by_label("Sponsor link").input_value()
    sponsor_path = re.sub(r"^https?://[^/]+", "", link)
    assert re.fullmatch(r"/petitions/\d+/sponsor/[0-9a-f]{40}", sponsor_path), link

    # Two colleagues sponsor it through the link.
    for colleague, message in (("ben", "you are a sponsor"), ("chen", "goes to the moderators")):
        page = person(colleague)
        page.goto(sponsor_path)
        expect(page.get_by_role("heading", name="Sponsor this petition?")).to_be_visible()
        page.locator("main").get_by_role("button", name="Sponsor this petition").click()
        expect(page.locator("main .flashes")).to_contain_text(message)

    # A moderator opens it from the queue.
    morgan = person("morgan")
    morgan.goto("/moderation")
    morgan.locator("main").get_by_role("link", name=TITLE).click()
    morgan.locator("main").get_by_role("button", name="Open for signatures").click()
    expect(morgan.locator("main .flashes")).to_contain_text("is open for signatures")

    # Anyone finds it among the newest and by searching for a word of its background.
    visitor = person(None)
    visitor.goto("/petitions?sort=newest")
    expect(visitor.locator("main article.card").first).to_contain_text(TITLE)
    visitor.goto("/petitions")
    visitor.locator("main").get_by_label("Search").fill("suspects")
    visitor.locator("main").get_by_role("button", name="Show").click()
    expect(visitor.locator("main article.card")).to_have_count(1)
    expect(visitor.locator("main article.card")).to_contain_text(TITLE)
