"""The petition page (issue #22): the ask first, the verification details folded lower down, the person's place kept.

A worker arriving from a shared link sees the title, the ask, the count with its progress and the Sign button
(or "Sign in to sign") without scrolling, on a phone (360x740) and on a desktop (1280x800); signing up from there
lands back on the petition, and only on a path of this site."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from app.core.markdown import render_comment
from app.routes.petitions_pages import background_html
from tests import live_server
from tests.conftest import PASSWORD, Browser, code_from, outbox

pytestmark = pytest.mark.one_database

PETITION = "Publish the salary bands for every role"  # demo: open, anonymity allowed, a progress bar
SIZES = [(360, 740), (1280, 800)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("ppage") / "ppage.db")
    try:
        yield live
    finally:
        live.stop()


def in_first_screen(page, locator, height: int) -> None:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not shown"
    assert box["y"] >= -1 and box["y"] + box["height"] <= height, (locator, box, height)  # -1: subpixel rounding


@pytest.mark.browser
@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("who", [None, "chen"])
def test_the_ask_count_and_sign_button_are_in_the_first_screen(person, server, who, width, height) -> None:
    from playwright.sync_api import expect

    page = person(who)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(live_server.petition_url(server, PETITION))
    if who:
        expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
    page.evaluate("window.scrollTo(0, 0)")
    main = page.locator("main")
    in_first_screen(page, main.get_by_role("heading", level=1, name=PETITION), height)
    in_first_screen(page, main.locator(".ask"), height)
    in_first_screen(page, main.locator(".tally-count"), height)
    in_first_screen(page, main.locator(".tally progress"), height)
    # Signed in, the panel's choices run long: its Sign button leads straight to the form.
    sign = main.locator("#sign").get_by_role("link", name="Sign this petition" if who else "Sign in to sign")
    in_first_screen(page, sign, height)
    # The key ids, the log root, the CLI command and the raw JSON links wait, folded, in "Check this count".
    check = main.locator("details#check")
    expect(check.locator("summary")).to_contain_text("Check this count")
    for detail in (".anonymous-check", ".log-check", "code"):
        expect(check.locator(detail).first).to_be_hidden()
    assert not main.locator(".tally code, .tally a[href^='/api/']").count()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    check.locator("summary").click()
    expect(check.locator(".anonymous-check")).to_be_visible()
    expect(check.get_by_role("link", name="the log")).to_be_visible()
    if who:
        sign.click()
        page.wait_for_url(lambda url: url.endswith("#sign-form"))
        in_first_screen(page, main.locator("#sign-form legend"), height)


@pytest.mark.browser
def test_signing_up_from_a_shared_link_lands_back_on_the_petition(person, server) -> None:
    from playwright.sync_api import expect

    # A colleague copies the link from the petition's share row, and passes it on.
    sharer = person("chen")
    sharer.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    address = live_server.petition_url(server, PETITION)
    sharer.goto(address)
    row = sharer.get_by_role("region", name="Share this petition")
    row.get_by_role("button", name="Copy link").click()
    expect(row.get_by_role("status")).to_contain_text("Link copied")
    shared = sharer.evaluate("navigator.clipboard.readText()")
    assert shared == address
    # Someone without an account opens it.
    page = person(None)
    page.goto(shared)
    main = page.locator("main")
    count = int(main.locator(".tally-count strong").inner_text())
    main.get_by_role("link", name="Sign in to sign").click()
    main.get_by_role("link", name="Create an account").click()
    main.get_by_label("Work email address").fill("noor.haddad@example.org")
    main.get_by_label("Your name").fill("Noor Haddad")
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/verify$"))
    page.goto("/dev/mailbox")
    page.get_by_role("row").filter(has_text="noor.haddad@example.org").get_by_role(
        "link", name=re.compile(r"^Your code for Undersigned")
    ).first.click()
    found = re.search(r"^\s+(\d{6})\s*$", page.locator("pre.mail-body").inner_text(), re.MULTILINE)
    assert found
    page.goto("/verify")
    main.get_by_label("Code", exact=True).fill(found.group(1))
    main.get_by_role("button", name="Confirm", exact=True).click()
    # Confirmed: back on the petition, not the home page, and one step from signing it.
    expect(page).to_have_url(address)
    expect(main.get_by_role("heading", level=1)).to_have_text(PETITION)
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
    panel = main.locator("#sign")
    panel.get_by_label("Only the organizers").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(main.locator(".tally-count strong")).to_have_text(str(count + 1))
    expect(panel).to_contain_text("You signed on")


SIGN_UP = {"email": "nia.hart@example.org", "display_name": "Nia Hart", "password": PASSWORD}


@pytest.mark.parametrize(
    ("given", "lands"),
    [
        ("/petitions/7", "/petitions/7"),
        ("https://evil.example/petitions/7", "/"),
        ("//evil.example/petitions/7", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_the_confirmation_returns_only_to_a_path_of_this_site(browser: Browser, db, given, lands) -> None:
    form = browser.get("/signup", params={"next": given}).text
    assert 'name="next" value="' + (lands if given == lands else "/") + '"' in form
    # The attacker posts the target straight to the form, past the page's own cleaning.
    assert browser.post("/signup", {**SIGN_UP, "next": given}).headers["location"] == "/verify"
    [mail] = outbox(db, to="nia.hart@example.org")
    response = browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(mail)})
    assert response.status_code == 303 and response.headers["location"] == lands


def test_the_sign_in_page_passes_the_petition_on_to_sign_up(browser: Browser) -> None:
    page = browser.get("/signin", params={"next": "/petitions/3"}).text
    assert 'href="/signup?next=/petitions/3"' in page
    assert 'href="/signup"' in browser.get("/signin").text


def test_a_refused_sign_up_keeps_the_petition_to_return_to(browser: Browser) -> None:
    page = browser.post("/signup", {**SIGN_UP, "password": "short", "next": "/petitions/3"})
    assert page.status_code == 422 and 'name="next" value="/petitions/3"' in page.text


def test_why_keeps_the_paragraphs_a_browser_sends_with_crlf() -> None:
    typed = "First paragraph,\r\nsame paragraph.\r\n\r\nSecond with **weight** and a [link](https://example.org).\r\n\r\n- one\r\n- two"
    html = background_html(typed)
    assert html.count("<p>") == 2 and "<strong>weight</strong>" in html and "<li>one</li>" in html
    assert 'href="https://example.org"' in html
    # The comments' subset and sanitiser: no raw HTML, no script links, no headings to shout with.
    assert background_html("<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n# Loud") == render_comment(
        "<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n# Loud"
    )
    hostile = background_html("<script>alert(1)</script>\r\n\r\n[x](javascript:alert(1))\r\n\r\n# Loud")
    assert "<script" not in hostile and 'href="javascript' not in hostile and "<h1" not in hostile


def test_the_page_shows_why_in_paragraphs_and_markdown(browser: Browser, db, rt) -> None:
    from tests import factories

    petition = factories.open_petition(
        db, rt, background="Heat fails every winter.\r\n\r\nWe ask for **a fix** by March."
    )
    page = browser.get(f"/petitions/{petition.id}").text
    assert "<p>Heat fails every winter.</p>" in page and "<p>We ask for <strong>a fix</strong> by March.</p>" in page


def test_the_top_concerns_plural_follows_the_count(new_browser, db, rt) -> None:
    from tests import factories
    from tests.conftest import sign_in_as

    petition = factories.open_petition(db, rt)
    # The twice-endorsed comment first: the once-endorsed one's id is then never 1, as a plural keyed on the id
    # would need to read right.
    twice = factories.comment(db, rt, petition, body="Twice endorsed concern")
    once = factories.comment(db, rt, petition, body="Once endorsed concern")
    for comment, times in ((twice, 2), (once, 1)):
        for _ in range(times):
            reader = sign_in_as(new_browser(), db, factories.worker(db))
            assert reader.api("POST", f"/api/v1/comments/{comment.id}/endorsement").status_code == 201
    page = new_browser().get(f"/petitions/{petition.id}").text
    concerns = page[page.index("Top concerns") : page.index("</ol>", page.index("Top concerns"))]
    assert re.search(r"Twice endorsed concern</a>\s*<span class=\"meta\">[^<]*, 2 endorsements</span>", concerns), (
        concerns
    )
    assert re.search(r"Once endorsed concern</a>\s*<span class=\"meta\">[^<]*, 1 endorsement</span>", concerns), (
        concerns
    )


@pytest.mark.browser
def test_after_an_anonymous_signature_focus_moves_to_the_confirmation(person, server) -> None:
    from playwright.sync_api import expect

    page = person("dara")  # a worker whose wallet starts in this browser (each person() is a new browser)
    page.goto(live_server.petition_url(server, PETITION))
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
    panel = page.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    # Few colleagues hold the demo petition's token: the panel asks to confirm first.
    panel.get_by_label("I understand that I could be identified by counting").check()
    panel.get_by_role("button", name="Sign this petition").click()
    status = panel.locator("[data-anonymous-status]")
    expect(status).to_contain_text("You signed anonymously")
    # The form is gone: a screen reader user hears where they are, instead of being dropped on the page body.
    expect(status).to_be_focused()
