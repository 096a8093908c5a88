"""A Chromium crash fails the test that met it, with Chromium's own log beside it, instead of leaving the suite
waiting (issue #23: under load a browser test crashed once). Run in a process of its own, so the crash and its
log are this test's alone, and a hang is a failure after a time limit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, missing, project_root

pytestmark = pytest.mark.browser

CRASH = """
from playwright.sync_api import Error
from tests.conftest import chromium_browser

with chromium_browser() as browser:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("chrome://crash")
    except Error:
        pass  # the navigation itself is aborted by the crash
    try:
        page.set_content("<p>still there?</p>")
        print("the crashed page answered")
    except Error as error:
        print(f"refused: {error}")
    # The worker's one browser outlives a crashed page: the next test's context works.
    other = browser.new_context().new_page()
    other.set_content("<p>the next test</p>")
    print(other.inner_text("p"))
"""


def test_a_crashed_page_fails_at_its_next_step_with_chromium_s_log() -> None:
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    result = subprocess.run(
        [sys.executable, "-c", CRASH], check=False, cwd=project_root(), capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused: Page.set_content: Page crashed" in result.stdout, result.stdout
    assert "the next test" in result.stdout
    # Chromium's own lines, which pytest shows with the failing test's captured stderr.
    assert "Intentionally crashing" in result.stderr, result.stderr[-3000:]
