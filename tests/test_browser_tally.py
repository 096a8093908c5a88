"""In a real browser: an open petition's tally follows new signatures without a reload (app/static/tally.js)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests import live_server

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: open, signed by Ana only


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "tally.db", tally_poll_seconds=0.5)
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
