"""In a real browser: a petition crosses its threshold, leadership responds with a commitment, signers are
emailed, the organizers find the answer insufficient and ask for a follow-up, and the timeline shows it all."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from app import jobs
from tests import live_server

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: organized by Ana, signed by Ben, Chen and Dara


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "responses.db", response_threshold=4)
    try:
        yield live
    finally:
        live.stop()


def test_threshold_response_email_judgement_and_timeline(person, server) -> None:
    from playwright.sync_api import expect

    app = server.app

    # Ana's signature is the fourth: the petition reaches its response threshold and the clock starts.
    ana = person("ana")
    ana.goto("/petitions")
    ana.locator("main").get_by_role("link", name=PETITION).click()
    ana.wait_for_url(re.compile(r"/petitions/\d+$"))  # the click only starts the navigation
    petition_url = ana.url
    ana.locator("#sign").get_by_label("Everyone").check()
    ana.locator("#sign").get_by_label("Email me the organizers' updates").check()
    ana.locator("#sign").get_by_role("button", name="Sign this petition").click()
    expect(ana.locator(".clock")).to_contain_text("Leadership must respond by")

    # Riley, for leadership, sees it due and responds with a commitment.
    riley = person("riley")
    riley.goto("/")
    riley.get_by_role("navigation", name="Main").get_by_role("link", name="Responses due").click()
    row = riley.get_by_role("row", name=re.compile(PETITION))
    row.get_by_role("link", name=re.compile("Respond")).click()
    main = riley.locator("main")
    main.get_by_label("Leadership's position").select_option("partially_accepted")
    main.get_by_label("Summary").fill("Recording stops for most teams by March.")
    main.get_by_label("Details").fill("We will end recording outside the **pilot** group.")
    main.get_by_label("Commitment 1").fill("End screen recording outside the pilot")
    main.get_by_label("Owner").first.fill("Chief Technology Officer")
    main.get_by_label("Due date").first.fill("2027-03-31")
    main.get_by_role("button", name="Publish the response").click()
    expect(riley.locator("#responses")).to_contain_text("Recording stops for most teams by March.")
    expect(riley.locator("#responses")).to_contain_text("End screen recording outside the pilot")

    # The worker fans the response out: Ana asked for updates, so she is emailed.
    jobs.run_once(sessions=app.state.sessionmaker, rt=app.state.runtime)
    ana.goto("/dev/mailbox")
    expect(ana.get_by_role("row", name=re.compile("ana@example.org.*Leadership responded"))).to_have_count(1)

    # Ana, the organizer, says it does not answer the petition and asks for a follow-up.
    ana.goto(petition_url)
    judgement = ana.locator("#responses form.judgement-form")
    judgement.get_by_label("No, it does not").check()
    judgement.get_by_label("Why (required when it does not)").fill("The pilot group is still recorded.")
    judgement.get_by_label("Ask leadership for a follow-up response").check()
    judgement.get_by_role("button", name="Save our judgement").click()
    expect(ana.locator(".judgement")).to_contain_text("does not answer")

    timeline = ana.locator("ol.timeline")
    for step in (
        "Opened for signatures",
        "Reached the response threshold",
        "Response clock started",
        "Leadership responded",
        "Organizers judged the response",
        "Organizers asked for a follow-up",
    ):
        expect(timeline).to_contain_text(step)
