"""axe-core in the browser tests: every page a journey shows is checked against WCAG 2.x A and AA.

axe-core is vendored (tests/vendor/, see its README) and evaluated through Playwright, which the pages' strict
Content-Security-Policy does not apply to: the app's own pages keep refusing inline scripts.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary, WeakSet

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Frame, Page

AXE = Path(__file__).parent / "vendor" / "axe.min.js"

# Every page is checked as a phone shows it and as a desktop does: the header folds into a menu, tables scroll.
WIDTHS = (360, 1280)
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices (landmarks, one main, heading order...).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


# axe.run in the page, or null where axe is not there yet: one call to the browser per check.
_RUN = """async (tags) => {
    if (typeof window.axe !== "object" || typeof window.axe.run !== "function") { return null; }
    const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
    return results.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary}))}));
}"""
# Browser contexts given axe for each new document (`prepare`), and how many documents axe was sent to by hand.
_PREPARED: WeakSet[BrowserContext] = WeakSet()
_SENT: WeakKeyDictionary[BrowserContext, int] = WeakKeyDictionary()


def prepare(context: BrowserContext) -> None:
    """Put axe-core in every document the context opens from now on, before the document's own scripts (an init
    script, which the pages' Content-Security-Policy does not apply to either). Sent to the browser once, where
    `violations` otherwise sends its 650 KB into each document it checks: a round trip of about 60 ms through this
    process, Playwright's driver and Chromium for each (measured on the petition page), where Chromium evaluates it
    in 10 ms from its compilation cache. A document that is never checked pays those 10 ms."""
    if context not in _PREPARED:
        context.add_init_script(script=_axe_source())
        _PREPARED.add(context)


def violations(page: Page) -> list[dict[str, object]]:
    """axe-core's violations on the page as it is now. A context whose second document is checked here is then
    `prepare`d: it is likely to have more to check."""
    found = page.evaluate(_RUN, TAGS)
    if found is None:
        page.evaluate(_axe_source())
        context = page.context
        _SENT[context] = _SENT.get(context, 0) + 1
        if _SENT[context] >= 2:
            prepare(context)
        found = page.evaluate(_RUN, TAGS)
    return found


def describe(found: list[dict[str, object]]) -> str:
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(
            f"    {node['target']}: {' '.join(str(node['summary']).split())}"
            for node in violation["nodes"]  # type: ignore[attr-defined]
        )
    return "\n".join(lines)


class Audit:
    """Checks pages with axe, at both WIDTHS, and remembers every page a browser showed, so none goes unchecked.

    Call `check(page)` once a page shows what the step is about; `assert_all_checked()` at the end fails if the
    browser moved on from a page that was never checked."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.unchecked: list[str] = []
        self._pending: dict[int, str | None] = {}

    def watch(self, page: Page) -> Page:
        prepare(page.context)  # every page it shows is checked

        def navigated(frame: Frame) -> None:
            if frame != page.main_frame:
                return
            previous = self._pending.get(id(page))
            if previous is not None:
                self.unchecked.append(previous)
            self._pending[id(page)] = frame.url

        page.on("framenavigated", navigated)
        return page

    def check(self, page: Page, widths: tuple[int, ...] = WIDTHS) -> None:
        """axe-core on the page at a phone's width and at a desktop's (WIDTHS), then back at the page's own size.

        The page's own width, when it is one of them, goes first: one relayout fewer (each costs Chromium about
        0.05 s of CPU on the petition page), and none to come back when the other width is the page's. A test
        that shows the same page at each width in turn can check each at its own (`widths`)."""
        page.wait_for_load_state("load")
        size = page.viewport_size or {"width": 1280, "height": 720}
        problems = []
        order = sorted(widths, key=lambda width: width != size["width"])
        try:
            for width in order:
                if width != (page.viewport_size or size)["width"]:
                    page.set_viewport_size({"width": width, "height": size["height"]})
                found = violations(page)
                if found:
                    problems.append(f"at {width} px:\n{describe(found)}")
        finally:
            if page.viewport_size != size:
                page.set_viewport_size(size)
        self._pending[id(page)] = None
        self.checked.append(page.url)
        assert not problems, f"axe-core found accessibility problems on {page.url} " + "\n".join(problems)

    def assert_all_checked(self) -> None:
        missed = self.unchecked + [url for url in self._pending.values() if url is not None]
        assert not missed, "pages shown but never checked with axe-core:\n" + json.dumps(missed, indent=2)
