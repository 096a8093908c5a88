"""Two of the journeys through the web pages (tests/test_journeys.py has the others and says how they are
checked): an organizer drafts, gathers sponsors, publishes, posts an update and exports the PDF; an admin sets
the rules, grants a role and reads the audit log.

They are a module of their own, on a live server of their own (the same fixtures), so that pytest-xdist's two
workers share the journeys: a module runs whole on one worker, and tests/test_journeys.py was the longest one
left to a single worker. Each journey arranges what it starts from, so none depends on another having run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.accessibility import Audit
from tests.test_journeys import (
    audit,  # noqa: F401  (fixtures shared with tests/test_journeys.py; this module gets its own server)
    flash,
    person,  # noqa: F401
    photograph,
    screenshots,  # noqa: F401
    server,  # noqa: F401
    signed_in,  # noqa: F401
)

pytestmark = pytest.mark.browser


def test_organizer_drafts_gathers_sponsors_publishes_posts_an_update_and_exports_the_pdf(
    person, audit: Audit, screenshots: Path | None
) -> None:
    from playwright.sync_api import expect

    title = "Covered bike storage at the warehouse"

    # Ana drafts the petition in two steps.
    ana = audit.watch(person("ana"))
    main = ana.locator("main")
    ana.goto("/")
    audit.check(ana)
    ana.get_by_role("navigation", name="Main").get_by_role("link", name="Start a petition").click()
    audit.check(ana)
    main.get_by_label("Title").fill(title)
    main.get_by_label("What do you ask for?").fill("Build covered, lockable bike storage beside the warehouse.")
    main.get_by_role("button", name="Continue").click()
    expect(main.get_by_label("Why?")).to_be_visible()
    audit.check(ana)
    main.get_by_label("Why?").fill("Bikes left in the rain rust, and two were stolen this autumn.")
    main.get_by_label("Category").select_option("workplace")
    main.get_by_role("button", name="Save draft").click()
    expect(ana.get_by_role("heading", name=title)).to_be_visible()
    audit.check(ana)
    main.get_by_role("button", name="Freeze the text and get sponsors").click()
    sponsor_path = re.sub(r"^https?://[^/]+", "", main.get_by_label("Sponsor link").input_value())
    audit.check(ana)
    petition_path = re.sub(r"/sponsor/.*$", "", sponsor_path)

    # Two colleagues sponsor it through the private link; then it waits for the moderators.
    for colleague, message in (("ben", "you are a sponsor"), ("chen", "goes to the moderators")):
        page = audit.watch(person(colleague))
        page.goto(sponsor_path)
        audit.check(page)
        page.locator("main").get_by_role("button", name="Sponsor this petition").click()
        expect(flash(page)).to_contain_text(message)
        audit.check(page)

    # Morgan opens it for signatures.
    morgan = audit.watch(person("morgan"))
    morgan.goto("/moderation")
    audit.check(morgan)
    morgan.locator("main").get_by_role("link", name=title).click()
    audit.check(morgan)
    morgan.locator("main").get_by_role("button", name="Open for signatures").click()
    expect(flash(morgan)).to_contain_text("is open for signatures")
    audit.check(morgan)

    # Ana posts an update to signers and followers.
    ana.goto(petition_path)
    expect(main.locator(".tag", has_text="Open")).to_be_visible()
    # The wallet fills the sign panel above the organizers' form once it has its tokens; a click aimed before then
    # can land where the form was.
    expect(ana.locator("html")).to_have_attribute("data-wallet-ready", "true")
    audit.check(ana)
    updates_form = ana.locator("#organizers form", has=ana.get_by_role("button", name="Send update"))
    updates_form.get_by_label("Update title").fill("Facilities will visit on Monday")
    updates_form.get_by_label("Message").fill("Bring your photos of the racks: they measure the space then.")
    updates_form.get_by_role("button", name="Send update").click()
    expect(flash(ana)).to_contain_text("Update posted")
    expect(ana.locator("#updates")).to_contain_text("Facilities will visit on Monday")
    audit.check(ana)

    # She exports the delivery report as a PDF; the export is in the petition's history.
    main.get_by_role("link", name="Export the tally or the names").click()
    audit.check(ana)
    tally = main.locator("form", has=ana.get_by_role("group", name="Download the tally as"))
    with ana.expect_download() as download:
        tally.get_by_role("button", name="PDF").click()
    pdf = download.value.path()
    assert Path(pdf).read_bytes().startswith(b"%PDF-"), download.value.suggested_filename
    assert download.value.suggested_filename.endswith(".pdf")
    ana.reload()
    expect(main.get_by_role("row", name=re.compile("Ana Silva.*Tally.*PDF"))).to_have_count(1)
    audit.check(ana)
    photograph(ana, screenshots, "organizer", height=1400)


def test_admin_sets_domains_and_thresholds_grants_a_role_and_reads_the_audit_log(
    person, audit: Audit, screenshots: Path | None
) -> None:
    from playwright.sync_api import expect

    admin = audit.watch(person("admin"))
    main = admin.locator("main")
    admin.goto("/")
    audit.check(admin)
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Admin", exact=True).click()
    audit.check(admin)

    # Chen becomes a moderator.
    row = main.get_by_role("row", name=re.compile("Chen Wei"))
    row.get_by_label("Role for Chen Wei").select_option("moderator")
    row.get_by_role("button", name="Grant").click()
    expect(flash(admin)).to_contain_text("Chen Wei is now a moderator.")
    expect(main.get_by_role("row", name=re.compile("Chen Wei"))).to_contain_text("moderator")
    audit.check(admin)

    # The rules: a second email domain, and thresholds. (Petitions already open keep theirs.)
    admin.get_by_role("navigation", name="Admin").get_by_role("link", name="Rules").click()
    audit.check(admin)
    main.get_by_label("Email domains of members").fill("example.org, example.net")
    main.get_by_label("Signatures that oblige leadership to respond").fill("50")
    main.get_by_label("Signatures that escalate a petition").fill("500")
    main.get_by_role("button", name="Save the rules").click()
    expect(flash(admin)).to_contain_text("Saved.")
    expect(main.get_by_label("Email domains of members")).to_have_value(re.compile(r"example\.net"))
    expect(main.get_by_label("Signatures that escalate a petition")).to_have_value("500")
    audit.check(admin)

    # The audit log holds both changes, and its chain checks out.
    admin.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit log").click()
    log = main.get_by_role("list", name="Audit entries, newest first")
    expect(
        log.get_by_role("listitem").filter(has_text="Avery Admin granted Chen Wei the moderator role.")
    ).to_have_count(1)
    expect(log).to_contain_text(
        re.compile(
            r"Avery Admin changed the organization's rules: email domains from "
            r"example\.org to example\.org, example\.net"
        )
    )
    audit.check(admin)
    photograph(admin, screenshots, "admin", height=1400)
    main.get_by_role("link", name="Check the whole chain now").click()
    expect(main).to_contain_text("The chain is intact")
    audit.check(admin)
