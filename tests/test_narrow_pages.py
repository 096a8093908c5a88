"""Every page the app serves, on a 360 px phone: none is wider than the screen, so nobody has to scroll sideways.

The list of pages comes from the app's route table (as the authorization matrix takes it), so a new page is
checked the day it is added. Each page is opened by the role it is for, on the demo organization.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from app.core.access import Access, declared_access
from tests import accessibility, ballot_helpers, live_server
from tests.conftest import served_routes, sign_in_demo

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FloatRect, Page
    from sqlalchemy.orm import Session

    from app.core.runtime import Runtime

pytestmark = pytest.mark.browser

WIDTH = 360
OPEN = "Stop recording our screens to train AI"  # demo: open, created by Ana, with a discussion
IN_MODERATION = "Quiet rooms on every floor"  # demo: waiting for a moderator, created by Chen
DRAFT = "A four-day week pilot for the support team"  # demo: Dara's draft

# Who opens a page of each access level: a demo account's local part, or None for signed out.
VISITOR = {
    Access.public: None,
    Access.development: None,
    Access.account: "ana",
    Access.worker: "ana",
    Access.organizer: "ana",
    Access.responder: "riley",
    Access.pulse: "riley",  # puts polls to every member (issue #25)
    Access.moderator: "morgan",
    Access.admin: "admin",
}
# Pages that are not for reading: probes for load balancers, answering JSON; a petition's QR code and poster; a
# poll's results as a download; the open pages' live polls, answering JSON.
NOT_PAGES = {
    "/healthz",
    "/readyz",
    "/petitions/{petition_id}/qr.svg",
    "/petitions/{petition_id}/poster.pdf",
    "/polls/{ballot_id}/results.{fmt}",
    "/petitions/{petition_id}/comments/count",
    "/petitions/{petition_id}/live",
}

ROUTES, _ = served_routes()
PAGES = sorted(
    path for (method, path) in ROUTES if method == "GET" and not path.startswith("/api/") and path not in NOT_PAGES
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("narrow") / "narrow.db")
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def ids(server: live_server.LiveServer) -> dict[str, int]:
    """The demo's objects the pages name, and what the demo lacks: leadership's response to the open petition (its
    organizers' ratification page) and a poll put to every member, open, with its answer form."""
    from app.models.comments import Comment
    from app.models.petitions import Petition

    app = server.app
    with app.state.sessionmaker() as db:
        petitions = {title: id_ for id_, title in db.execute(select(Petition.id, Petition.title))}
        comment = db.scalar(
            select(Comment.id)
            .where(Comment.petition_id == petitions[OPEN], Comment.parent_id.is_(None))
            .order_by(Comment.id)
            .limit(1)
        )
    # Written as the app writes (BEGIN IMMEDIATE on SQLite): a reader that then writes fails at once when the
    # server wrote in between.
    with app.state.write_sessionmaker() as db:
        response, ballot = _response_and_poll(db, app.state.runtime, petitions[OPEN])
    return {
        "open": petitions[OPEN],
        "in_moderation": petitions[IN_MODERATION],
        "draft": petitions[DRAFT],
        "comment": comment,
        "response": response,
        "ballot": ballot,
    }


def _response_and_poll(db: Session, rt: Runtime, petition_id: int) -> tuple[int, int]:
    from app.accounts import service as accounts
    from app.models.petitions import Petition
    from app.responses import schemas as response_schemas
    from app.responses import service as responses

    riley = accounts.get_by_email(db=db, email="riley@example.org")
    assert riley is not None
    petition = db.get(Petition, petition_id)
    assert petition is not None
    response = responses.post_response(
        db=db,
        rt=rt,
        petition=petition,
        responder=riley,
        form=response_schemas.ResponseCreate(
            summary="We will stop recording screens for training while the works council reviews it.",
            details="The vendor contract is paused from next month.",
            status="under_review",
        ),
    )
    ballot = ballot_helpers.pulse_ballot(
        db,
        rt,
        author=riley,
        question="Should the office open at eight on Mondays, when the early shift starts?",
        options=["Yes, at eight", "No, keep nine o'clock", "Only in the winter months"],
    )  # commits the response with it
    return response.id, ballot.id


@pytest.fixture(scope="module")
def visitors(chromium: Browser, server: live_server.LiveServer) -> Iterator[dict[str | None, Page]]:
    """One phone-sized browser per demo account the pages need, signed in once."""
    contexts = []
    pages: dict[str | None, Page] = {}
    for local in sorted({value or "" for value in VISITOR.values()} | {"ben"}):
        context = chromium.new_context(base_url=server.base_url, viewport={"width": WIDTH, "height": 740})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if local:
            sign_in_demo(page, local)
        pages[local or None] = page
    try:
        yield pages
    finally:
        for context in contexts:
            context.close()


def _address(path: str, ids: dict[str, int]) -> tuple[str, str | None]:
    """The address to open for a route, and who opens it when it is not the route's usual visitor."""
    who = None
    petition = ids["open"]
    if path.startswith("/moderation/petitions/{petition_id}") and not path.endswith("/signatures"):
        petition = ids["in_moderation"]  # the review page, with its claim, open, reject and hide controls
    if path == "/comments/{comment_id}/edit":
        who = "ben"  # the comment's author
    if path == "/polls/{ballot_id}/edit":
        who = "riley"  # the poll's author
    url = path.format(
        petition_id=petition,
        comment_id=ids["comment"],
        token="t" * 43,
        message_id=1,
        ballot_id=ids["ballot"],
        response_id=ids["response"],
    )
    return url, who


def test_the_route_list_has_the_pages_it_should() -> None:
    # A guard against the list coming out empty or short (a change to route_table): then nothing would be checked.
    for path in (
        "/",
        "/petitions/{petition_id}",
        "/moderation/petitions/{petition_id}",
        "/admin/users",
        "/admin/audit",
        "/petitions/{petition_id}/report",
    ):
        assert path in PAGES


@pytest.mark.one_database
@pytest.mark.parametrize("path", PAGES)
def test_no_page_is_wider_than_a_phone(path: str, visitors: dict[str | None, Page], ids: dict[str, int]) -> None:
    (access,) = declared_access(ROUTES[("GET", path)])
    url, who = _address(path, ids)
    page = visitors[who or VISITOR[access]]
    response = page.goto(url)
    assert response is not None and response.status < 500, f"{url}: {response and response.status}"
    if "text/html" not in (response.headers.get("content-type") or ""):
        pytest.fail(f"{url} is not a page ({response.headers.get('content-type')}): list it in NOT_PAGES")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > WIDTH:
        wide = page.evaluate(
            """(limit) => [...document.querySelectorAll('body *')]
            .filter((node) => node.getBoundingClientRect().right > limit + 0.5)
            .filter((node) => !node.closest('[data-scroll]') || node.matches('[data-scroll]'))
            .slice(0, 8).map((node) => node.tagName.toLowerCase() + (node.className ? '.' + node.className : '')
                + ' right=' + Math.round(node.getBoundingClientRect().right))""",
            WIDTH,
        )
        pytest.fail(f"{url} as {who or VISITOR[access]} is {width} px wide at {WIDTH} px: {wide}")


def _open_as(
    chromium: Browser, server: live_server.LiveServer, local: str, *, width: int, javascript: bool = True
) -> Page:
    context = chromium.new_context(
        base_url=server.base_url, viewport={"width": width, "height": 800}, java_script_enabled=javascript
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in_demo(page, local)
    return page


def _assert_fits_and_passes_axe(page: Page, width: int) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width, page.url
    found = accessibility.violations(page)
    assert not found, f"{page.url}:\n{accessibility.describe(found)}"


@pytest.mark.one_database
def test_the_audit_log_reads_in_sentences_on_a_phone(chromium: Browser, server: live_server.LiveServer) -> None:
    """The log is a list of sentences that wraps at 360 px (no sideways scrolling region to reach); each entry's
    raw form opens from the keyboard and still fits."""
    from playwright.sync_api import expect

    from app.audit import service as audit
    from app.models.accounts import User

    app = server.app
    with app.state.sessionmaker.begin() as db:  # an entry as adding to a list writes it
        admin = next(user for user in db.scalars(select(User)) if user.email == "admin@example.org")
        audit.record(
            db=db,
            rt=app.state.runtime,
            actor=admin,
            action="list.added",
            subject="department",
            detail={"name": "Facilities and workplace services"},
        )
    page = _open_as(chromium, server, "admin", width=WIDTH)
    try:
        page.goto("/admin/audit")
        entry = (
            page.get_by_role("list", name="Audit entries, newest first")
            .get_by_role("listitem")
            .filter(has_text="added “Facilities and workplace services” to the list of departments.")
            .first
        )
        expect(entry).to_be_visible()
        summary = entry.locator("summary")
        for _ in range(80):
            page.keyboard.press("Tab")
            if summary.evaluate("(node) => node === document.activeElement"):
                break
        else:
            pytest.fail("the entry's raw form is never reached with Tab")
        page.keyboard.press("Enter")
        expect(entry.locator("details")).to_have_attribute("open", "")
        expect(entry).to_contain_text("list.added")
        _assert_fits_and_passes_axe(page, WIDTH)
    finally:
        page.context.close()


def _overlaps(a: FloatRect, b: FloatRect) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


@pytest.mark.one_database
def test_admins_confirm_before_granting_admin_and_no_role_is_preselected(
    chromium: Browser, server: live_server.LiveServer
) -> None:
    from playwright.sync_api import expect

    # On a phone: the confirmation is a page of its own, served by the server, not a script's dialog.
    page = _open_as(chromium, server, "admin", width=WIDTH)
    main = page.locator("main")
    try:
        page.goto("/admin/users")
        row = main.get_by_role("row").filter(has_text="ben@example.org")
        picker = row.get_by_label("Role for Ben Okafor")
        expect(picker).to_have_value("")
        assert picker.evaluate("(node) => [...node.options].filter((o) => o.defaultSelected).map((o) => o.value)") in (
            [""],
            [],
        ), "no role may be preselected"
        _assert_fits_and_passes_axe(page, WIDTH)

        # Granting without choosing is refused in plain words (the browser's own check aside).
        picker.evaluate("(node) => node.removeAttribute('required')")
        row.get_by_role("button", name="Grant").click()
        expect(main.locator(".flashes")).to_contain_text("Choose a role to grant")

        # Choosing admin asks first; cancelling grants nothing.
        row = main.get_by_role("row").filter(has_text="ben@example.org")
        row.get_by_label("Role for Ben Okafor").select_option("admin")
        row.get_by_role("button", name="Grant").click()
        expect(page.get_by_role("heading", name="Make Ben Okafor an admin?")).to_be_visible()
        _assert_fits_and_passes_axe(page, WIDTH)
        main.get_by_role("link", name="Cancel").click()
        row = main.get_by_role("row").filter(has_text="ben@example.org")
        expect(row.locator("ul.roles")).not_to_contain_text("admin")

        # Confirming grants it.
        row.get_by_label("Role for Ben Okafor").select_option("admin")
        row.get_by_role("button", name="Grant").click()
        main.get_by_role("button", name="Yes, make Ben Okafor an admin").click()
        expect(main.locator(".flashes")).to_contain_text("Ben Okafor is now a admin")
        row = main.get_by_role("row").filter(has_text="ben@example.org")
        expect(row.locator("ul.roles")).to_contain_text("admin")

        # Other roles need no extra step.
        row.get_by_label("Role for Ben Okafor").select_option("moderator")
        row.get_by_role("button", name="Grant").click()
        expect(main.locator(".flashes")).to_contain_text("Ben Okafor is now a moderator")
    finally:
        page.context.close()


@pytest.mark.one_database
def test_the_review_page_reads_well_and_a_rejected_petition_is_not_called_closed(
    chromium: Browser, server: live_server.LiveServer, ids: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    page = _open_as(chromium, server, "morgan", width=1280)
    main = page.locator("main")
    try:
        page.goto(f"/moderation/petitions/{ids['in_moderation']}")
        # The three decision cards sit side by side, none over another, each holding all of its controls.
        cards = main.locator(".decisions > form")
        expect(cards).to_have_count(3)
        boxes = [box for index in range(3) if (box := cards.nth(index).bounding_box())]
        assert len(boxes) == 3
        for first in range(3):
            for second in range(first + 1, 3):
                assert not _overlaps(boxes[first], boxes[second]), f"cards {first} and {second} overlap: {boxes}"
        for index in range(3):
            spill = cards.nth(index).evaluate("""(card) => {
                const box = card.getBoundingClientRect();
                return [...card.querySelectorAll('*')].filter((node) => {
                    const r = node.getBoundingClientRect();
                    return r.width && (r.left < box.left - 0.5 || r.right > box.right + 0.5);
                }).map((node) => node.tagName);
            }""")
            assert not spill, f"card {index} spills: {spill}"

        # The record is in words.
        record = main.locator("ol.timeline")
        expect(record).to_contain_text("Sent to colleagues for sponsorship")
        expect(record).to_contain_text("Sponsored, and sent to the moderators")
        assert "_" not in record.inner_text()
        _assert_fits_and_passes_axe(page, 1280)

        # Rejected: the petition's pages say so, and never that it is closed.
        main.get_by_label("Reason (shown publicly)").select_option(index=1)
        main.get_by_role("button", name="Reject", exact=True).click()
        expect(main.locator(".flashes")).to_contain_text("was rejected")
        for url in (f"/moderation/petitions/{ids['in_moderation']}",):
            page.goto(url)
            text = main.inner_text()
            assert "Rejected" in text, url
            assert not re.search(r"\bclos(ed|es)\b", text, re.IGNORECASE), (
                f"{url} calls the rejected petition closed:\n{text}"
            )
    finally:
        page.context.close()
