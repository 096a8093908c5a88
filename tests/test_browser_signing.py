"""In a real browser: sign with the name shown, sign for the organizers only, and withdraw."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: organized by Ben, signed by Ana (organizers only)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "signing.db")
    try:
        yield live
    finally:
        live.stop()


def open_petition(page: Page) -> None:
    page.goto("/petitions")
    page.locator("main").get_by_role("link", name=PETITION).click()


def test_sign_publicly_for_organizers_only_and_withdraw(person) -> None:
    from playwright.sync_api import expect

    # Chen signs with the name shown: the name appears and the tally moves from 1 to 2.
    chen = person("chen")
    open_petition(chen)
    tally = chen.locator(".tally-count strong")
    expect(tally).to_have_text("1")
    panel = chen.locator("#sign")
    panel.get_by_label("Everyone").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(chen.locator("main .flashes")).to_contain_text("Your name is shown with the petition.")
    expect(tally).to_have_text("2")
    expect(chen.locator("main")).to_contain_text("Chen Wei")
    expect(panel).to_contain_text("with your name shown")

    # Dara signs for the organizers only: counted, but her name is not on the page for other workers.
    dara = person("dara")
    open_petition(dara)
    dara.locator("#sign").get_by_label("Only the organizers").check()
    dara.locator("#sign").get_by_role("button", name="Sign this petition").click()
    expect(dara.locator("main .flashes")).to_contain_text("Only the petition's organizers can see your name.")
    chen.reload()
    expect(tally).to_have_text("3")
    expect(chen.locator("main")).not_to_contain_text("Dara Novak")

    # Ben organizes the petition: he sees Dara's name among the names shown to organizers.
    ben = person("ben")
    open_petition(ben)
    ben.locator("main").get_by_role("link", name="Names signers showed to organizers").click()
    expect(ben.get_by_role("row", name=re.compile("Dara Novak"))).to_contain_text("organizers")
    expect(ben.get_by_role("row", name=re.compile("Chen Wei"))).to_contain_text("everyone")

    # Dara withdraws: she is counted out at once.
    dara.locator("#sign").get_by_role("button", name="Withdraw my signature").click()
    expect(dara.locator("main .flashes")).to_contain_text("no longer counted")
    expect(dara.locator(".tally-count strong")).to_have_text("2")
