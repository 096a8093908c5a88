"""The share row in Chromium (issue #22): the copy button copies, the QR code a reader sees reads back as the
petition's address, the sponsor link has the same row, and every one of these fits a phone and passes axe-core.
Without JavaScript the link stays in a field to select.

The journey from a shared link (copied here, then opened signed out, signed up, signed) is in
tests/test_petition_page_ux.py, which shares its demo server with the first-screen checks."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from PIL import Image

from app.demo import DEMO_PASSWORD
from tests import accessibility, live_server

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: open
DRAFT = "A four-day week pilot for the support team"  # demo: Dara's draft
SIZES = [(360, 740), (1280, 800)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("share") / "share.db")
    try:
        yield live
    finally:
        live.stop()


def fits_and_passes_axe(page, width: int) -> None:
    wide = page.evaluate(
        """(limit) => [...document.querySelectorAll('main *')]
        .filter((node) => node.getBoundingClientRect().right > limit + 0.5).slice(0, 8)
        .map((node) => node.tagName.toLowerCase() + '.' + node.className + ' in '
             + (node.closest('[id]') || document.body).id + ': right=' + Math.round(node.getBoundingClientRect().right))""",
        width,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, (page.url, wide)
    found = accessibility.violations(page)
    assert not found, f"{page.url}:\n{accessibility.describe(found)}"


def copy_from(page, row) -> str:
    """Press the row's Copy button; what the clipboard then holds."""
    from playwright.sync_api import expect

    row.get_by_role("button", name="Copy link").click()
    expect(row.get_by_role("status")).to_have_text(re.compile(r"^Link copied\."))
    return str(page.evaluate("navigator.clipboard.readText()"))


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_copy_button_copies_the_address_and_the_qr_code_reads_back(chromium, server, width, height) -> None:
    import zxingcpp
    from playwright.sync_api import expect

    context = chromium.new_context(base_url=server.base_url, viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    try:
        page = context.new_page()
        address = live_server.petition_url(server, PETITION)
        page.goto(address)
        row = page.get_by_role("region", name="Share this petition")
        expect(row.get_by_label("Link to this petition")).to_have_value(address)
        assert copy_from(page, row) == address
        for name in ("Email", "Teams chat", "WhatsApp", "Poster to print (A4 PDF)"):
            expect(row.get_by_role("link", name=name)).to_be_visible()
        row.locator("summary").filter(has_text="QR code").click()
        code = row.get_by_role("img", name=re.compile(r"^QR code of the petition's address"))
        expect(code).to_be_visible()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=code.element_handle())
        shot = Image.open(io.BytesIO(code.screenshot())).convert("L")
        assert [found.text for found in zxingcpp.read_barcodes(shot)] == [address]
        fits_and_passes_axe(page, width)
        # This Chromium has no share sheet: the button for it stays hidden rather than doing nothing.
        assert page.evaluate("typeof navigator.share") == "undefined"
        expect(row.get_by_role("button", name="More ways to share")).to_be_hidden()
    finally:
        context.close()


def test_where_the_browser_has_a_share_sheet_the_row_opens_it(chromium, server) -> None:

    context = chromium.new_context(base_url=server.base_url, viewport={"width": 360, "height": 740})
    # A phone's browser, as far as the page can tell: navigator.share exists (and here records what it is given).
    context.add_init_script("navigator.share = (data) => { window.sharedWith = data; return Promise.resolve(); };")
    try:
        page = context.new_page()
        address = live_server.petition_url(server, PETITION)
        page.goto(address)
        row = page.get_by_role("region", name="Share this petition")
        row.get_by_role("button", name="More ways to share").click()
        page.wait_for_function("() => window.sharedWith !== undefined")
        assert page.evaluate("window.sharedWith") == {"title": PETITION, "url": address}
        fits_and_passes_axe(page, 360)
    finally:
        context.close()


def test_without_javascript_the_link_waits_in_a_field_to_select(chromium, server) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(
        base_url=server.base_url, viewport={"width": 360, "height": 740}, java_script_enabled=False
    )
    try:
        page = context.new_page()
        address = live_server.petition_url(server, PETITION)
        page.goto(address)
        row = page.get_by_role("region", name="Share this petition")
        field = row.get_by_label("Link to this petition")
        expect(field).to_have_value(address)
        expect(field).to_be_visible()
        expect(row.get_by_role("button", name="Copy link")).to_be_hidden()  # it would do nothing
        expect(row.get_by_role("button", name="More ways to share")).to_be_hidden()
        field.select_text()  # selectable, for the browser's own Copy
        assert (
            page.evaluate(
                "getSelection().toString() || document.activeElement.value.substring("
                "document.activeElement.selectionStart, document.activeElement.selectionEnd)"
            )
            == address
        )
        expect(row.get_by_role("link", name="Email")).to_have_attribute("href", re.compile(r"^mailto:\?subject="))
    finally:
        context.close()


def test_the_sponsor_link_has_a_copy_button_and_the_share_row(chromium, server) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(base_url=server.base_url, viewport={"width": 360, "height": 740})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    try:
        page = context.new_page()
        page.goto("/signin")
        main = page.locator("main")
        main.get_by_label("Work email address").fill("dara@example.org")
        main.get_by_label("Password").fill(DEMO_PASSWORD)
        main.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        page.goto("/petitions/mine")
        main.get_by_role("link", name=DRAFT).first.click()
        main.locator("form[action$='/submit'] button").click()  # the organizers fix the text for sponsors
        row = page.get_by_role("region", name="Ask colleagues to sponsor it")
        link = str(row.get_by_label("Sponsor link").input_value())
        assert re.search(r"/petitions/\d+/sponsor/[^/?#]+$", link), link
        assert copy_from(page, row) == link
        expect(row.get_by_role("link", name="WhatsApp")).to_be_visible()
        assert not row.get_by_text("QR code").count() and not row.get_by_text("Poster").count()
        fits_and_passes_axe(page, 360)
        # The sponsor page, as the organizer sees it, offers the same row.
        page.goto(link)
        expect(
            page.get_by_role("region", name="Ask colleagues to sponsor it").get_by_label("Sponsor link")
        ).to_have_value(link)
        fits_and_passes_axe(page, 360)
    finally:
        context.close()
