"""In a real browser (issue #22): leadership's answer sits above the sign panel and names who gave it and in what
role, as the UK Parliament's petitions site shows it, while the title, the ask, the count and the Sign button stay in
the first screen on a phone and a desktop; a commitment's progress notes show under the commitment itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests import live_server
from tests.test_petition_page_ux import SIZES, in_first_screen

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: open, anonymity allowed, a progress bar
# As long as a summary may be (200 characters): the box must still leave the Sign button in the first screen.
SUMMARY = (
    "We will publish the salary bands for every role on the intranet by the end of March, after the pay "
    "review, and explain how each band is set and reviewed, in plain words for everyone to read."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("rbox") / "rbox.db")
    try:
        yield live
    finally:
        live.stop()


def respond(person, url: str) -> None:
    from playwright.sync_api import expect

    riley = person("riley")
    riley.goto(url + "/respond")
    main = riley.locator("main")
    main.get_by_label("Leadership's position").select_option("accepted")
    main.get_by_label("Your role").fill("Chief People Officer")
    main.get_by_label("Summary").fill(SUMMARY)
    main.get_by_label("Details").fill("The bands go up with the **March** pay review.")
    main.get_by_label("Commitment 1").fill("Publish the bands on the intranet")
    main.get_by_label("Owner").first.fill("People team")
    main.get_by_label("Due date").first.fill("2027-03-31")
    main.get_by_role("button", name="Publish the response").click()
    expect(riley.locator("#response-box")).to_contain_text("Chief People Officer")
    commitment = riley.locator("#responses li[id^='commitment-']").first
    commitment.get_by_label("Status").select_option("in_progress")
    commitment.get_by_label("Progress note (optional)").fill("Bands drafted for engineering and sales")
    commitment.get_by_role("button", name=re.compile("Update")).click()
    expect(riley.locator("#responses .commitment-progress")).to_contain_text("Bands drafted")


def test_the_response_box_names_the_responder_above_the_sign_panel_and_leaves_the_ask_first(person, server) -> None:
    from playwright.sync_api import expect

    url = live_server.petition_url(server, PETITION)
    respond(person, url)
    for who in (None, "chen"):
        page = person(who)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            page.goto(url)
            if who:
                expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
            page.evaluate("window.scrollTo(0, 0)")
            main = page.locator("main")
            box = main.locator("#response-box")
            expect(box.get_by_role("heading", name="Leadership responded")).to_be_visible()
            expect(box).to_contain_text("Riley Park (Leadership), Chief People Officer")
            expect(box).to_contain_text("Accepted")
            expect(box).to_contain_text(SUMMARY)
            panel = main.locator("#sign")
            if width >= 1280:
                assert box.bounding_box()["y"] + box.bounding_box()["height"] <= panel.bounding_box()["y"], (
                    "the response sits above the sign panel"
                )
                expect(main.locator(".responded-link")).to_be_hidden()
            else:
                # Above the panel it pushed the Sign button out of the first screen: a line there leads to it.
                in_first_screen(page, main.get_by_role("link", name="Leadership responded: read it"), height)
                assert box.bounding_box()["y"] >= panel.bounding_box()["y"] + panel.bounding_box()["height"]
            in_first_screen(page, main.get_by_role("heading", level=1, name=PETITION), height)
            in_first_screen(page, main.locator(".ask"), height)
            in_first_screen(page, main.locator(".tally-count"), height)
            in_first_screen(page, main.locator(".tally progress"), height)
            sign = panel.get_by_role("link", name="Sign this petition" if who else "Sign in to sign")
            in_first_screen(page, sign, height)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            # The box leads to the whole response, whose commitment shows its progress under it.
            box.get_by_role("link", name="Read it and its commitments").click()
            commitment = main.locator("#responses li[id^='commitment-']").first
            progress = commitment.locator(".commitment-progress")
            expect(progress).to_contain_text("In progress")
            expect(progress).to_contain_text("Bands drafted for engineering and sales")


def test_the_account_page_and_an_unsubscribe_link_pass_axe_at_both_widths(person, server) -> None:
    from playwright.sync_api import expect
    from sqlalchemy import select

    from app.mail import unsubscribe
    from app.models.accounts import User
    from app.models.mail_kinds import MailKind
    from tests import accessibility

    app = server.app
    with app.state.sessionmaker() as db:
        # Addresses are sealed: found once opened.
        chen_id = next(user.id for user in db.scalars(select(User)) if user.email == "chen@example.org")
    petition_id = int(live_server.petition_url(server, PETITION).rsplit("/", 1)[1])
    link = unsubscribe.link(rt=app.state.runtime, user_id=chen_id, kind=MailKind.news, petition_id=petition_id)
    page = person("chen")
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/account")
        expect(page.locator("main")).to_contain_text("Your petitions and their mail")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert not (found := accessibility.violations(page)), accessibility.describe(found)
        page.goto(link.removeprefix(server.base_url))
        expect(page.locator("main").get_by_role("button", name="Stop this mail")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert not (found := accessibility.violations(page)), accessibility.describe(found)
