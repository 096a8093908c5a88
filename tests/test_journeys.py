"""Five journeys through the web pages, one per kind of user, each end to end in a real browser against a live
server with the demo organization; and the pages at a phone's width and a desktop's. The organizer's and the
admin's journeys are in tests/test_journeys_organizer_admin.py, on a server of their own: pytest-xdist runs a
module whole on one worker, and these were the longest module the two workers could not share.

Every page a journey shows is checked with axe-core (tests/accessibility.py) against WCAG 2.0-2.2 A and AA and
axe's best practices: a journey fails on any violation, and on a page it moved on from without checking. With
UNDERSIGNED_SCREENSHOTS=1 (`make screenshots`) each journey leaves a screenshot in docs/screenshots/, and the
responsive test four more; other runs take none (a full-page screenshot cost Chromium 0.2-0.4 s of CPU, and
nothing looked at them).

What a journey starts from that is not its own doing (a response already posted, a flagged comment, a petition
waiting for moderation) is arranged through the JSON API, so the journeys do not depend on one another's order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.demo import DEMO_PASSWORD, DEMO_PETITIONS
from tests import live_server
from tests.accessibility import Audit

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"

# The demo organization's petitions (app/demo.py).
RECORDING = "Stop recording our screens to train AI"  # open, anonymity allowed, 3 signatures and a discussion
SALARIES = "Publish the salary bands for every role"  # open, anonymity allowed, 1 signature
QUIET_ROOMS = "Quiet rooms on every floor"  # waiting for moderation, no anonymity
FOUR_DAY_WEEK = "A four-day week pilot for the support team"  # Dara's draft


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    # Two sponsors keep the organizer's journey short; at 3 signatures the demo's first petition is due an answer.
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("journeys") / "journeys.db", sponsors_required=2, response_threshold=3
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def screenshots() -> Path | None:
    """Where the journeys' screenshots go: docs/screenshots/ with UNDERSIGNED_SCREENSHOTS=1, nowhere otherwise."""
    if os.environ.get("UNDERSIGNED_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return None


@pytest.fixture
def audit() -> Iterator[Audit]:
    audit = Audit()
    yield audit
    audit.assert_all_checked()


@pytest.fixture
def signed_in(chromium, server: live_server.LiveServer) -> Iterator[object]:
    """A browser context signed in as a demo account (or not, with None), through the API: quicker than
    conftest's `person`, and the sign-in page is checked once, in the worker's journey."""
    contexts: list[BrowserContext] = []

    def open_as(local_part: str | None, **options: object) -> BrowserContext:
        context = chromium.new_context(base_url=server.base_url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        if local_part:
            Api(context).post("/sessions", {"email": f"{local_part}@example.org", "password": DEMO_PASSWORD})
        return context

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture
def person(signed_in):
    """A page in the browser of a demo account: `person("ana")`."""
    return lambda local_part: signed_in(local_part).new_page()


@pytest.fixture
def api(signed_in):
    """The JSON API as a demo account, for arranging what a journey starts from: `api("dara").post(...)`."""
    return lambda local_part: Api(signed_in(local_part))


class Api:
    def __init__(self, context: BrowserContext) -> None:
        self.request = context.request

    def call(self, method: str, path: str, body: object | None = None) -> object:
        token = self.request.get("/api/v1/csrf").json()["csrf_token"]
        reply = self.request.fetch(f"/api/v1{path}", method=method, data=body, headers={"X-CSRF-Token": token})
        assert reply.ok, f"{method} {path}: {reply.status} {reply.text()}"
        return reply.json() if reply.status != 204 else None

    def get(self, path: str) -> object:
        return self.call("GET", path)

    def post(self, path: str, body: object | None = None) -> object:
        return self.call("POST", path, body)


def petition_id(api: Api, title: str) -> int:
    """The id of one of the demo's petitions (seeded first, in order), as the account sees it."""
    found = [petition[2] for petition in DEMO_PETITIONS].index(title) + 1
    assert api.get(f"/petitions/{found}")["title"] == title  # type: ignore[index]
    return found


def flash(page: Page):
    return page.locator("main .flashes")


def photograph(page: Page, folder: Path | None, name: str, *, height: int | None = None) -> None:
    """The whole page, or its top `height` pixels, when screenshots are asked for (`folder`). Kept in the
    repository, it is reduced to 256 colours (Pillow comes with fpdf2): a third of the size, and the text and the
    colours of the tags read the same."""
    if folder is None:
        return
    path = folder / f"{name}.png"
    clip = None
    if height is not None:
        full = page.evaluate("document.scrollingElement.scrollHeight")
        clip = {"x": 0, "y": 0, "width": (page.viewport_size or {"width": 1280})["width"], "height": min(full, height)}
    page.screenshot(path=str(path), full_page=True, clip=clip)  # type: ignore[arg-type]
    if folder == SCREENSHOTS:
        from PIL import Image

        with Image.open(path) as image:
            reduced = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        reduced.save(path, optimize=True)


def test_worker_signs_up_signs_three_ways_comments_follows_and_reads_the_response(
    person, api, audit: Audit, screenshots: Path | None
) -> None:
    from playwright.sync_api import expect

    # Arranged: Morgan opens the quiet-rooms petition (no anonymity), Riley answers the salary bands one.
    morgan = api("morgan")
    quiet_rooms = petition_id(morgan, QUIET_ROOMS)
    if morgan.get(f"/petitions/{quiet_rooms}")["state"] == "in_moderation":
        morgan.post(f"/moderation/petitions/{quiet_rooms}/open")
    salaries = petition_id(morgan, SALARIES)
    api("riley").post(
        f"/petitions/{salaries}/responses",
        {
            "status": "partially_accepted",
            "summary": "Bands are published for engineering first.",
            "details": "Every other department follows by **June**.",
            "commitments": [{"text": "Publish the engineering bands", "owner": "Chief People Officer"}],
        },
    )

    # Eve signs up from the home page and confirms her address with the code from the mailbox.
    eve = audit.watch(person(None))
    main = eve.locator("main")
    eve.goto("/")
    audit.check(eve)
    main.get_by_role("link", name="Create an account").click()
    audit.check(eve)
    main.get_by_label("Work email address").fill("eve@example.org")
    main.get_by_label("Your name").fill("Eve Mensah")
    main.get_by_label("Password").fill("a long enough passphrase")
    main.get_by_role("button", name="Create account").click()
    expect(flash(eve)).to_contain_text("Check your inbox")
    audit.check(eve)
    eve.goto("/dev/mailbox")
    audit.check(eve)
    eve.get_by_role("row").filter(has_text="eve@example.org").get_by_role(
        "link", name=re.compile(r"^Your code for Undersigned")
    ).first.click()
    code = re.search(r"^\s+(\d{6})\s*$", eve.locator("pre.mail-body").inner_text(), re.MULTILINE)
    assert code, eve.locator("pre.mail-body").inner_text()
    audit.check(eve)
    eve.goto("/verify")
    audit.check(eve)
    main.get_by_label("Code", exact=True).fill(code.group(1))
    main.get_by_role("button", name="Confirm", exact=True).click()
    expect(flash(eve)).to_contain_text("Your address is confirmed")
    audit.check(eve)

    # She finds the salary bands petition by searching, and signs it anonymously (the wallet's token).
    eve.get_by_role("navigation", name="Main").get_by_role("link", name="Petitions", exact=True).click()
    audit.check(eve)
    main.get_by_label("Search").fill("salary")
    main.get_by_role("button", name="Show").click()
    audit.check(eve)
    main.get_by_role("link", name=SALARIES).click()
    expect(eve.locator("html")).to_have_attribute("data-wallet-ready", "true")
    audit.check(eve)
    panel = eve.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    # Few colleagues hold its token yet: she reads the warning and confirms.
    panel.get_by_label("I understand that I could be identified by counting").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(panel.locator("[data-anonymous-status]")).to_contain_text("You signed anonymously")
    audit.check(eve)

    # She follows it without being emailed as a signer, and reads leadership's response.
    main.get_by_role("button", name="Follow this petition").click()
    expect(flash(eve)).to_contain_text("You follow this petition")
    expect(main.get_by_role("button", name="Stop following")).to_be_visible()
    responses = eve.locator("#responses")
    expect(responses).to_contain_text("Bands are published for engineering first.")
    expect(responses.locator("strong", has_text="June")).to_be_visible()
    expect(responses).to_contain_text("Publish the engineering bands")
    audit.check(eve)
    photograph(eve, screenshots, "worker", height=1400)

    # The screen-recording petition, from the list: she signs with her name shown, and comments.
    eve.goto("/petitions")
    audit.check(eve)
    main.get_by_role("link", name=RECORDING).click()
    expect(eve.locator("html")).to_have_attribute("data-wallet-ready", "true")
    # The discussion's top concerns read as text, not Markdown.
    expect(eve.locator(".top-concerns")).to_contain_text("also capture customer data on our screens")
    audit.check(eve)
    panel.get_by_label("Everyone").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(flash(eve)).to_contain_text("Your name is shown with the petition.")
    expect(eve.locator(".tally-count strong")).to_have_text("4")
    expect(main.locator(".names")).to_contain_text("Eve Mensah")
    audit.check(eve)
    discussion = eve.locator("#discussion")
    discussion.get_by_label("Your comment").fill("Recording **keystrokes** tells nobody how well we work.")
    discussion.get_by_role("button", name="Post comment").click()
    expect(eve.locator("#comments-announce")).to_contain_text("Posted: your comment is at the top")  # in place
    expect(
        eve.locator("li.comment", has_text="tells nobody how well we work").locator("strong", has_text="keystrokes")
    ).to_be_visible()
    audit.check(eve)

    # Quiet rooms does not allow anonymity: she signs for the organizers only, and is counted without her name.
    eve.goto("/petitions")
    audit.check(eve)
    main.get_by_role("link", name=QUIET_ROOMS).click()
    expect(panel.get_by_label("Only the organizers")).to_be_visible()
    expect(panel.get_by_label("Nobody: sign anonymously")).to_have_count(0)
    audit.check(eve)
    panel.get_by_label("Only the organizers").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(flash(eve)).to_contain_text("Only the petition's organizers can see your name.")
    expect(eve.locator(".tally-count strong")).to_have_text("1")
    expect(main).not_to_contain_text("Eve Mensah")
    audit.check(eve)


def test_responder_sees_what_is_due_responds_with_a_commitment_and_updates_it(
    person, audit: Audit, screenshots: Path | None
) -> None:
    from playwright.sync_api import expect

    riley = audit.watch(person("riley"))
    main = riley.locator("main")
    riley.goto("/")
    audit.check(riley)
    riley.get_by_role("navigation", name="Main").get_by_role("link", name="Responses due").click()
    audit.check(riley)
    row = main.get_by_role("row", name=re.compile(RECORDING))
    expect(row).to_contain_text(re.compile(r"\d{2} \w{3} 20\d\d"))  # its due date
    row.get_by_role("link", name=re.compile("Respond")).click()
    audit.check(riley)
    main.get_by_label("Leadership's position").select_option("partially_accepted")
    main.get_by_label("Summary").fill("Recording stops for most teams by March.")
    main.get_by_label("Details").fill("We will end recording outside the **pilot** group.")
    main.get_by_label("Commitment 1").fill("End screen recording outside the pilot")
    main.get_by_label("Owner").first.fill("Chief Technology Officer")
    main.get_by_label("Due date").first.fill("2027-03-31")
    main.get_by_role("button", name="Publish the response").click()
    responses = riley.locator("#responses")
    expect(responses).to_contain_text("Recording stops for most teams by March.")
    expect(responses).to_contain_text("End screen recording outside the pilot")
    audit.check(riley)

    # Work starts on the commitment: Riley records it with a progress note.
    commitment = responses.locator(".commitments li", has_text="End screen recording outside the pilot")
    commitment.get_by_label("Status").select_option(label="In progress")
    commitment.get_by_label("Progress note (optional)").fill("Recording is off in Sales and Support.")
    commitment.get_by_role("button", name=re.compile("^Update")).click()
    expect(flash(riley)).to_be_visible()
    expect(commitment.locator(".tag").first).to_have_text("In progress")
    audit.check(riley)
    photograph(riley, screenshots, "responder", height=1800)

    # It is no longer due.
    riley.get_by_role("navigation", name="Main").get_by_role("link", name="Responses due").click()
    expect(main.get_by_role("row", name=re.compile(RECORDING))).to_have_count(0)
    audit.check(riley)


def test_moderator_opens_a_petition_from_the_queue_and_settles_flagged_comments(
    person, api, audit: Audit, screenshots: Path | None
) -> None:
    from playwright.sync_api import expect

    # Arranged: Dara's draft gathers its two sponsors; Chen flags two comments of the demo's discussion.
    dara = api("dara")
    four_day_week = petition_id(dara, FOUR_DAY_WEEK)
    dara.post(f"/petitions/{four_day_week}/submit")
    token = str(dara.get(f"/petitions/{four_day_week}/sponsor-link")["url"]).rsplit("/", 1)[1]
    for sponsor in ("ana", "ben"):
        api(sponsor).post(f"/petitions/{four_day_week}/sponsorships", {"token": token})
    chen = api("chen")
    recording = petition_id(chen, RECORDING)
    comments = chen.get(f"/petitions/{recording}/comments?sort=newest")["items"]
    by_text = {comment["body_html"]: comment["id"] for comment in comments}
    anonymous = next(id_ for body, id_ in by_text.items() if "reads the recordings" in body)
    question = next(id_ for body, id_ in by_text.items() if "privacy team" in body)
    chen.post(f"/comments/{anonymous}/flags", {"reason": "personal_information", "note": "Names a practice"})
    chen.post(f"/comments/{question}/flags", {"reason": "off_topic"})

    morgan = audit.watch(person("morgan"))
    main = morgan.locator("main")
    morgan.goto("/")
    audit.check(morgan)
    morgan.get_by_role("navigation", name="Main").get_by_role("link", name="Moderation").click()
    audit.check(morgan)
    photograph(morgan, screenshots, "moderator", height=1400)

    # The petition: Morgan claims it, so other moderators see she is on it, then opens it.
    main.get_by_role("link", name=FOUR_DAY_WEEK).click()
    audit.check(morgan)
    main.get_by_role("button", name="I am reviewing this one").click()
    expect(main).to_contain_text("You are reviewing this petition")
    audit.check(morgan)
    main.get_by_role("button", name="Open for signatures").click()
    expect(flash(morgan)).to_contain_text("is open for signatures")
    audit.check(morgan)

    # The flagged comments: one hidden with a public reason, the other kept.
    morgan.goto("/moderation")
    expect(main.get_by_role("link", name=FOUR_DAY_WEEK)).to_have_count(1)  # now among the recent decisions
    audit.check(morgan)
    main.get_by_role("link", name=re.compile("Flagged comments")).click()
    audit.check(morgan)
    flagged = main.locator("article.flagged", has_text="reads the recordings")
    expect(flagged).to_contain_text("Names a practice")
    flagged.get_by_label("Public reason").fill("Identifies a colleague")
    flagged.get_by_role("button", name="Hide").click()
    expect(flash(morgan)).to_contain_text("Comment hidden")
    audit.check(morgan)
    main.locator("article.flagged", has_text="privacy team").get_by_role("button", name=re.compile("^Keep it")).click()
    expect(flash(morgan)).to_be_visible()
    expect(main.locator("article.flagged")).to_have_count(0)
    audit.check(morgan)

    # The discussion shows the reason in place of the hidden comment.
    morgan.goto(f"/petitions/{recording}")
    expect(morgan.locator("#discussion")).to_contain_text("[hidden by moderators: Identifies a colleague]")
    audit.check(morgan)


@pytest.mark.parametrize("width", [360, 1280])
def test_home_and_petition_pages_fit_the_screen(
    signed_in, server: live_server.LiveServer, screenshots: Path | None, width: int
) -> None:
    """At a phone's 360 px nothing scrolls sideways, for a visitor or for Ana, who organizes the petition (her
    page has the most on it: the sign panel, the organizers' forms, the discussion). Hers are photographed. Each
    page is checked with axe at the width it was opened at: the two widths' runs together check both."""
    from playwright.sync_api import expect

    petition = live_server.petition_url(server, RECORDING)
    for who in (None, "ana"):
        page = signed_in(who, viewport={"width": width, "height": 800}).new_page()
        audit = Audit()
        for name, path in (("home", "/"), ("petition", petition)):
            page.goto(path)
            audit.check(page, widths=(width,))
            scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
            assert scroll_width <= width, (
                f"the {name} page for {who or 'a visitor'} scrolls sideways at {width} px: {scroll_width} px wide"
            )
            if who:
                photograph(page, screenshots, f"{name}-{width}")
        # The first Tab shows the skip link, with a focus outline, and it moves focus to the main content.
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        assert skip.evaluate("element => getComputedStyle(element).outlineStyle") != "none"
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
