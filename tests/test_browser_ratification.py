"""In a real browser, issue #25's journey from end to end: leadership responds to a petition; its organizer asks
the signers whether the response answers it; named and anonymous signers answer from their wallets, one of them
changes their answer; the organizer closes the poll; the verdict shows on the poll, on the petition's timeline and
on the scoreboard; and `undersigned verify` checks the poll's log and recounts the verdict."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests import live_server
from tests.test_browser_ballots import open_poll

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: organized by Ana, signed by Ben, Chen and Dara


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    # k = 3: a verdict shows once three signers answered (the demo petition has three signers, and Morgan signs
    # anonymously here); the response threshold is the four signatures, so Riley may respond.
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("browser") / "ratification.db",
        clock=live_server.ShiftedClock(),
        min_group_size=3,
        response_threshold=4,
    )
    try:
        yield live
    finally:
        live.stop()


def answer(page, ballot_id: int, choice: str, *, change: bool = False) -> None:
    """From the poll's page, as the wallet sends it (cookie-less, the exchange first for a new signer)."""
    from playwright.sync_api import expect

    open_poll(page, ballot_id)
    form = page.locator("form[data-ballot-form]")
    form.get_by_label(choice, exact=True).check()
    form.get_by_role("button", name="Change my answer" if change else "Send my answer anonymously").click()
    expect(page.locator("[data-ballot-status]")).to_contain_text(
        f'Your {"new " if change else ""}answer is in; it is counted now. You chose "{choice}".'
    )


def test_signers_ratify_a_response_and_anyone_can_check_the_verdict(person, server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    petition_id = int(live_server.petition_url(server, PETITION).rsplit("/", 1)[1])

    # Morgan signs anonymously: the same cookie-less request asks, blind, for the signer credential.
    morgan = person("morgan")
    morgan.goto(f"/petitions/{petition_id}")
    expect(morgan.locator("html")).to_have_attribute("data-wallet-ready", "true")
    panel = morgan.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    confirm = panel.get_by_label("I understand that I could be identified by counting")
    if confirm.is_enabled():
        confirm.check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(panel.locator("[data-anonymous-status]")).to_contain_text("You signed anonymously")

    # Riley responds for leadership.
    riley = person("riley")
    riley.goto(f"/petitions/{petition_id}/respond")
    main = riley.locator("main")
    main.get_by_label("Leadership's position").select_option("partially_accepted")
    main.get_by_label("Summary").fill("Recording stops for most teams by March.")
    main.get_by_label("Details").fill("We will end recording outside the pilot group.")
    main.get_by_role("button", name="Publish the response").click()
    expect(riley.locator("#responses")).to_contain_text("Recording stops for most teams by March.")

    # Ana, the organizer, asks the signers whether it answers the petition.
    ana = person("ana")
    ana.goto(f"/petitions/{petition_id}")
    ana.get_by_role("link", name="Ask the signers: does this response answer the petition?").click()
    ana.locator("main").get_by_role("button", name="Ask the signers").click()
    ana.wait_for_url(re.compile(r"/polls/\d+$"))
    expect(ana.locator("main")).to_contain_text("The signers are asked.")
    ballot_id = int(ana.url.rsplit("/", 1)[1])

    # Named and anonymous signers answer from their wallets; Dara changes her mind.
    answer(person("ben"), ballot_id, "Yes")
    answer(morgan, ballot_id, "Partly")
    dara = person("dara")
    answer(dara, ballot_id, "No")
    answer(dara, ballot_id, "Yes", change=True)
    shown = live_server.get_json(server, f"/api/v1/ballots/{ballot_id}")
    assert shown["credentials_issued"] == 3 and shown["answers_counted"] == 3
    ana.goto(f"/polls/{ballot_id}")
    expect(ana.locator("main")).not_to_contain_text("accepted by")  # hidden until the close

    # Ana closes the poll. Its closing keeps the hour only (the row names her), so answers a server still holds
    # go out with their batch first: the verdict shows from the end of that hour, on the poll, the petition's
    # timeline and the scoreboard.
    ana.locator("main").get_by_role("button", name="Close the poll now").click()
    expect(ana.locator("main")).to_contain_text("closed early by its author")
    expect(ana.locator("#results")).not_to_contain_text("Yes")
    clock = server.app.state.runtime.clock
    clock.ahead += timedelta(hours=1)
    ana.goto(f"/polls/{ballot_id}")
    expect(ana.locator("#results")).to_contain_text("Partly")
    verdict = re.compile(r"accepted by 67% of 3 signers who answered \(partly: 33%")
    ana.goto(f"/petitions/{petition_id}")
    expect(ana.locator("ol.timeline")).to_contain_text(verdict)
    reader = person(None)
    reader.goto("/scoreboard")
    expect(reader.locator("#verdicts")).to_contain_text(verdict)
    expect(reader.locator("#verdicts")).to_contain_text(PETITION)

    # Anyone can check the verdict against the poll's log: the tree, the checkpoint, every credential, Dara's two
    # revisions, and the recount.
    checked = CliRunner().invoke(
        cli, ["verify", f"{server.base_url}/polls/{ballot_id}", "--state", str(tmp_path / "state.json")]
    )
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("OK: ") and "4 answers from 3 credentials" in checked.output, checked.output
