"""Browser tests that meet a crashed, killed or hung Chromium, run by tests/test_browser_crash.py in a pytest of
their own. Most fail on purpose: the file's name keeps the suite from collecting it."""

from __future__ import annotations

import os
import signal
from contextlib import suppress

import pytest

pytestmark = pytest.mark.browser


def test_a_page_crashes(chromium) -> None:
    from playwright.sync_api import Error

    page = chromium.new_context().new_page()
    with suppress(Error):  # the navigation itself is aborted by the crash
        page.goto("chrome://crash")
    page.set_content("<p>still there?</p>")


def test_after_a_crashed_page_the_browser_still_serves(chromium) -> None:
    page = chromium.new_context().new_page()
    page.set_content("<p>the next test</p>")
    assert page.inner_text("p") == "the next test"


def test_the_browser_process_is_killed(chromium) -> None:
    page = chromium.new_context().new_page()
    page.set_content("<p>before</p>")
    os.kill(chromium.pid, signal.SIGKILL)
    page.set_content("<p>after</p>")


def test_after_a_killed_browser_the_next_test_has_a_new_one(chromium) -> None:
    page = chromium.new_context().new_page()
    page.set_content("<p>a new browser</p>")
    assert page.inner_text("p") == "a new browser"


def test_the_browser_stops_answering(chromium) -> None:
    os.kill(chromium.pid, signal.SIGSTOP)
    chromium.new_context()  # opening a context has no time limit of its own: only the watchdog ends this wait
