"""Debian's Chromium for the browser tests, driven by Playwright (no browser download): one per test process,
with its log kept in a file of its own, so a browser that dies or stops answering fails the test that met it,
with the browser's last words, instead of leaving the suite waiting (issue #23)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Debian's chromium-headless-shell: the same Chromium build's headless-only browser (no window, tab strip or
# omnibox to run), which is what Playwright's own headless runs use. Preferred where it is installed (.ci/run
# installs it): measured on the journeys, Chromium's processes took 17.4 s of CPU against 22.6 s for the full
# browser in headless mode, and on the story without JavaScript and the crash tests 18.3 s against 25.5 s, for the
# same pages, scripts and checks. Pointed at the binary, not /usr/bin's shell script, which would stay between
# Playwright and the browser (the pid a test kills would be the script's).
HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"
# Chromium features the tests turn off. Every browser context opens a window of its own, and each window started
# the omnibox's dropdown as a page of its own (chrome://omnibox-popup.top-chrome, in a renderer process of its own)
# that a test never sees: measured on 8 contexts opening 2 pages each, these renderers took 2.1-3.0 s of CPU of the
# browser's 7-8 s; without them, 3.5 s.
# And the spare renderer, which Chromium starts ahead of a navigation: the tests open many short-lived contexts (each
# person is one), and spares were started for nothing. Measured on 25 contexts opening two pages each: 26-31 Chromium
# processes without a type and 43-45 renderers started with it, 15-16 and 34-37 without; 1.5-2 s less CPU in all
# (about 60 ms a context), and no slower.
DISABLED_FEATURES = (
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "WebUIOmniboxFullPopup",
    "SpareRendererForSitePerProcess",
)
# Chromium takes the last --disable-features it is given, so ours repeats Playwright's own (its chromiumSwitches,
# in the driver's coreBundle.js): a launch that finds Playwright's list grown relaunches with both.
PLAYWRIGHT_DISABLED_FEATURES = [
    "AimEnabled",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsFirstBalancedModeAutoEnable",
    "HttpsUpgrades",
    "LensOverlay",
    "MediaRouter",
    "NetworkTimeServiceQuerying",
    "OptimizationHints",
    "PaintHolding",
    "PreconnectToSearch",
    "TcpPortRandomizationWin",
    "ThirdPartyStoragePartitioning",
    "msEdgeUpdateLaunchServicesPreferredVersion",
    "msForceBrowserSignIn",
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LAUNCH_SECONDS = 60
# A browser test still running after this long is taken for a hung browser: Chromium is stopped, which fails
# whatever call the test waits on. Playwright's own timeouts cover a page's steps, but opening a context or a
# page has none. The story without JavaScript, the longest browser test, takes about 80 s on a quiet machine.
WATCHDOG_SECONDS = float(os.environ.get("UNDERSIGNED_TEST_BROWSER_WATCHDOG", "600"))
# Lines of Chromium's log that say nothing about a failure: there is no D-Bus in a test machine or a container.
_NOISE = re.compile(r"dbus/|Failed to connect to the bus|Fontconfig|unexpected operator")


def executable() -> str | None:
    for path in (HEADLESS_SHELL, CHROMIUM):
        if Path(path).is_file():
            return path
    return shutil.which("chromium")


class ChromiumDied(Exception):
    """The browser process ended while tests still needed it."""


class Recording:
    """What one browser context's pages did, in order, timed from the context's opening: each page's navigations,
    every answer with its status, requests that failed, console messages and uncaught errors. Printed in the report
    of a browser test that failed, so that a step that waited in vain (an announcement that never came: issue #23's
    comments flake) is explained by what the page asked and was answered meanwhile. Every value is read from the
    event Playwright already sent: recording asks the browser nothing."""

    LINES = 400  # the last ones are kept: the failure is at the end

    def __init__(self, context: Any, name: str) -> None:
        self.name = name
        self.lines: deque[str] = deque(maxlen=self.LINES)
        self._started = time.monotonic()
        self._pages: dict[int, int] = {}
        context.on("page", self._page)
        context.on("response", self._response)
        context.on("requestfailed", self._failed)
        context.on("console", self._console)
        context.on("weberror", self._error)

    def _say(self, page: Any, text: str) -> None:
        where = f"page {self._pages.get(id(page), '?')}" if page is not None else "context"
        self.lines.append(f"{time.monotonic() - self._started:7.2f}s {where}: {text}")

    def _page(self, page: Any) -> None:
        self._pages[id(page)] = len(self._pages) + 1

        def navigated(frame: Any) -> None:
            if frame == page.main_frame:
                self._say(page, f"at {frame.url}")

        page.on("framenavigated", navigated)

    @staticmethod
    def _page_of(request: Any) -> Any:
        from playwright.sync_api import Error

        try:
            return request.frame.page
        except Error:  # a service worker's request has no frame
            return None

    def _response(self, response: Any) -> None:
        request = response.request
        self._say(self._page_of(request), f"{request.method} {request.url} -> {response.status}")

    def _failed(self, request: Any) -> None:
        self._say(self._page_of(request), f"{request.method} {request.url} failed: {request.failure}")

    def _console(self, message: Any) -> None:
        where = message.location.get("url") if message.type in ("error", "warning") else None
        self._say(message.page, f"console.{message.type}: {message.text}" + (f" ({where})" if where else ""))

    def _error(self, error: Any) -> None:
        self._say(error.page, f"uncaught: {error.error.message}")

    def text(self) -> str:
        return f"{self.name}:\n" + ("\n".join(self.lines) or "(nothing)")


class Chromium:
    """The test process's browser, with what it said on stderr.

    Playwright's driver is started with DEBUG=pw:browser and its stderr on a log file: it copies there Chromium's
    own stderr and the moments the driver saw (launched with pid, process did exit with its signal). Tests hold
    this object as they would a Browser (attribute access goes to the live one); a browser found dead is
    launched again for the next test, after the test it died in failed with its log.
    """

    def __init__(self, playwright: Any, path: str, log: Path) -> None:
        self._playwright = playwright
        self._path = path
        self.log = log
        self.browser: Any = None
        self.pid: int | None = None
        self.killed_for: str | None = None  # why the watchdog stopped the browser, for the failure message
        self.recordings: list[Recording] = []  # the current test's contexts (`new_context`)
        self._watchdog: threading.Timer | None = None
        self._launch()

    def _launch(self) -> None:
        offset = self.log_size()
        disabled = [*PLAYWRIGHT_DISABLED_FEATURES, *DISABLED_FEATURES]
        self.browser = self._playwright.chromium.launch(
            executable_path=self._path,
            args=[*CHROMIUM_ARGS, "--disable-features=" + ",".join(disabled)],
            headless=True,
            timeout=LAUNCH_SECONDS * 1000,
        )
        log = self.log.read_text(errors="replace")[offset:]
        # The first list on the command line is Playwright's own; ours, last, is the one Chromium takes.
        lists = re.findall(r"<launching> .*?--disable-features=(\S*)", log)
        missing = [feature for feature in lists[0].split(",") if feature not in disabled] if lists else []
        if missing:
            self.browser.close()
            PLAYWRIGHT_DISABLED_FEATURES.extend(missing)
            self._launch()
            return
        launched = re.findall(r"<launched> pid=(\d+)", log)
        self.pid = int(launched[-1]) if launched else None
        self.killed_for = None

    @property
    def alive(self) -> bool:
        return bool(self.browser is not None and self.browser.is_connected())

    def relaunch_if_dead(self) -> None:
        if not self.alive:
            self._launch()

    def kill(self, reason: str) -> None:
        """Stop the browser process: every call waiting on it fails at once (Target ... has been closed)."""
        self.killed_for = reason
        if self.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def watch(self, seconds: float, what: str) -> None:
        """Kill the browser if it is still needed `seconds` from now (until `unwatch`): a hung browser then fails
        the call waiting on it instead of the suite hanging."""
        self.unwatch()
        self._watchdog = threading.Timer(seconds, self.kill, args=(f"{what} was still running after {seconds:g} s",))
        self._watchdog.daemon = True
        self._watchdog.start()

    def unwatch(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_tail(self, since: int = 0, lines: int = 40) -> str:
        """The last lines of the log written after byte `since`, without the lines every run has."""
        with open(self.log, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        kept = [line for line in text.splitlines() if "pw:browser" in line and not _NOISE.search(line)]
        return "\n".join(kept[-lines:])

    def _live(self) -> Any:
        if not self.alive:
            why = f" ({self.killed_for})" if self.killed_for else ""
            raise ChromiumDied(f"Chromium is no longer running{why}. The end of its log:\n{self.log_tail()}")
        return self.browser

    def __getattr__(self, name: str) -> Any:
        return getattr(self._live(), name)

    def new_context(self, **options: Any) -> Any:
        """A browser context whose pages' navigations, requests and console are recorded (`Recording`)."""
        context = self._live().new_context(**options)
        self.recordings.append(Recording(context, f"browser context {len(self.recordings) + 1}"))
        return context

    def recorded(self) -> str:
        return "\n\n".join(recording.text() for recording in self.recordings)

    def close(self) -> None:
        self.unwatch()
        if self.alive:
            self.browser.close()


@contextmanager
def chromium_browser(log: Path | None = None) -> Iterator[Chromium]:
    """Start Playwright's driver with its log on `log` (a temporary file if None) and launch Chromium."""
    path = executable()
    if not path:
        raise FileNotFoundError(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    folder = None
    if log is None:
        folder = tempfile.mkdtemp(prefix="chromium-log-")
        log = Path(folder) / "chromium.log"
    with open(log, "ab") as log_file:
        # The driver reads DEBUG once, as it starts, and takes sys.stderr's file for its own stderr.
        previous_debug, previous_stderr = os.environ.get("DEBUG"), sys.stderr
        os.environ["DEBUG"] = "pw:browser"
        sys.stderr = log_file
        try:
            manager = sync_playwright()
            playwright = manager.__enter__()
        finally:
            sys.stderr = previous_stderr
            if previous_debug is None:
                os.environ.pop("DEBUG", None)
            else:
                os.environ["DEBUG"] = previous_debug
    try:
        chromium = Chromium(playwright, path, log)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        manager.__exit__(None, None, None)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
