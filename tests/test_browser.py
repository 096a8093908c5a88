"""A real browser against a real server: sign up, read the code from the mailbox, verify, sign out, sign in.

Needs Debian's Chromium at /usr/bin/chromium and Playwright for Python. Without them the test is skipped on a
developer's machine and fails in CI (CI=true), where nothing may be skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import live_server
from tests.conftest import screenshot_if_failed

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

EMAIL = "ada.okafor@example.org"
NAME = "Ada Okafor"
PASSWORD = "a long enough passphrase"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve(tmp_path_factory.mktemp("browser") / "browser.db")
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def page(
    request: pytest.FixtureRequest, chromium: Browser, server: live_server.LiveServer, tmp_path: Path
) -> Iterator[Page]:
    context = chromium.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        try:
            screenshot_if_failed(request, [page], tmp_path)  # outside the repository
        finally:
            context.close()


def _flash(page: Page, text: str):
    return page.locator("main .flashes").get_by_text(text)


def test_sign_up_verify_sign_out_and_sign_in_again(page: Page) -> None:
    from playwright.sync_api import expect

    main = page.locator("main")
    nav = page.get_by_role("navigation", name="Main")

    # Sign up as a new worker.
    page.goto("/signup")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    main.get_by_label("Work email address").fill(EMAIL)
    main.get_by_label("Your name").fill(NAME)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/verify$"))
    expect(page.get_by_role("heading", name="Confirm your address")).to_be_visible()
    expect(_flash(page, "Check your inbox")).to_be_visible()

    # Read the code from the development mailbox, as a person would read their email.
    page.goto("/dev/mailbox")
    row = page.get_by_role("row").filter(has_text=EMAIL)
    row.get_by_role("link", name=re.compile(r"^Your code for Undersigned")).first.click()
    body = page.locator("pre.mail-body")
    expect(body).to_be_visible()
    found = re.search(r"^\s+(\d{6})\s*$", body.inner_text(), re.MULTILINE)
    assert found, body.inner_text()
    code = found.group(1)

    # The address waiting for its code is filled in; a wrong code is refused, with the error on the field.
    page.goto("/verify")
    email_field = main.get_by_label("Work email address")
    code_field = main.get_by_label("Code", exact=True)
    expect(email_field).to_have_value(EMAIL)
    code_field.fill(f"{(int(code) + 1) % 1_000_000:06d}")
    main.get_by_role("button", name="Confirm", exact=True).click()
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(main.locator("#code-error")).to_contain_text("That code is not right")
    expect(code_field).to_have_attribute("aria-describedby", re.compile(r"\bcode-error\b"))
    expect(email_field).to_have_value(EMAIL)

    # The right code confirms the address and signs in.
    code_field.fill(code)
    main.get_by_role("button", name="Confirm", exact=True).click()
    expect(_flash(page, "Your address is confirmed")).to_be_visible()
    expect(nav.get_by_role("link", name=NAME)).to_be_visible()

    # Sign out.
    nav.get_by_role("button", name="Sign out").click()
    expect(_flash(page, "You are signed out.")).to_be_visible()
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    expect(nav.get_by_role("link", name=NAME)).to_have_count(0)

    # Sign in again with the password.
    page.goto("/signin")
    main.get_by_label("Work email address").fill(EMAIL)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Sign in").click()
    expect(_flash(page, "Signed in. Welcome back")).to_be_visible()
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()

    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(main.locator("dl.facts")).to_contain_text(EMAIL)
    expect(main.locator("dl.facts")).to_contain_text(NAME)
