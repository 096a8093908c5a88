"""In a real browser, with batching on (issue #25, assets/src/ballot.js): a signer's first answer to a signers' poll
waits for the exchange's batch. The server answers the exchange 202; the wallet keeps the pending exchange and the
chosen answer, says so in the status line, and completes both once the batch is past: while the page stays open, or
at the next visit to the poll's page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import live_server
from tests.test_browser_ballots import PETITION, answers_in_log, cookies_sent, create_ballot, open_poll

pytestmark = pytest.mark.browser

BATCH_SECONDS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    # A batch every 2 s, each let out whatever its size (k = 1), so the test waits seconds, not hours.
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("browser") / "exchange.db", anonymous_batch_seconds=BATCH_SECONDS, min_group_size=1
    )
    try:
        yield live
    finally:
        live.stop()


def signers_poll(person: Any, server: live_server.LiveServer, question: str) -> dict[str, Any]:
    petition_id = int(live_server.petition_url(server, PETITION).rsplit("/", 1)[1])
    return create_ballot(
        person("ben"),  # the petition's creator: its organizer
        petition_id=petition_id,
        kind="single",
        audience="signers",
        question=question,
        options=["Yes", "No"],
    )


def wait_for_answers(server: live_server.LiveServer, ballot_id: int, page: Any) -> list[dict[str, Any]]:
    for _ in range(40):
        found = answers_in_log(server, ballot_id)
        if found:
            return found
        page.wait_for_timeout(250)
    return answers_in_log(server, ballot_id)


def test_the_wallet_completes_a_waiting_exchange_on_the_open_page_or_at_the_next_visit(person, server) -> None:
    from playwright.sync_api import expect

    ballot = signers_poll(person, server, "Should we ask for the bands by the end of the quarter?")
    ana = person("ana")  # signed the petition with her name: her wallet collects the signer credential
    sent = cookies_sent(ana, f"/api/v1/ballots/{ballot['id']}/exchange")
    open_poll(ana, ballot["id"])
    form = ana.locator("form[data-ballot-form]")
    form.get_by_label("Yes").check()
    form.get_by_role("button", name="Send my answer anonymously").click()
    status = ana.locator("[data-ballot-status]")
    expect(status).to_contain_text('Your answer "Yes" is kept on this device and not sent yet')
    expect(status).to_contain_text("next batch")
    assert answers_in_log(server, ballot["id"]) == []
    # The page stays open: after the batch it sends the same request again, finalizes, and sends the kept answer.
    expect(status).to_contain_text("Your answer is in", timeout=20_000)
    expect(status).to_contain_text('You chose "Yes"')
    assert sent and not any(sent)  # every exchange request without cookies
    assert [entry["choice"] for entry in wait_for_answers(server, ballot["id"], ana)] == [[0]]

    # A second poll to the same signers; this time she leaves the page before the batch, and comes back later.
    ballot = signers_poll(person, server, "Should the bands be published per team?")
    anonymous = cookies_sent(ana, f"/api/v1/ballots/{ballot['id']}/exchange")
    open_poll(ana, ballot["id"])
    form = ana.locator("form[data-ballot-form]")
    form.get_by_label("No").check()
    form.get_by_role("button", name="Send my answer anonymously").click()
    expect(ana.locator("[data-ballot-status]")).to_contain_text("kept on this device and not sent yet")
    ana.goto("/wallet")  # she leaves before the batch
    ana.wait_for_timeout((BATCH_SECONDS + 2) * 1000)
    assert len(anonymous) == 1
    ana.clock.install()  # the page's clock, to go past the wallet's wait below without waiting it
    open_poll(ana, ballot["id"])  # back on the poll's page (a signed-in request)
    # Review: the pending exchange and answer went out the moment the signed-in page loaded, which said whose they
    # were. They wait a random while after the visit instead.
    ana.wait_for_timeout(1500)
    assert len(anonymous) == 1, "the exchange went out with the signed-in page's load"
    expect(ana.locator("[data-ballot-status]")).to_contain_text("kept on this device")
    ana.clock.fast_forward("03:00")  # a few minutes later, the page still open: completed
    expect(ana.locator("[data-ballot-status]")).to_contain_text("Your answer is in", timeout=20_000)
    assert ana.locator("form[data-ballot-form]").get_by_label("No").is_checked()
    assert [entry["choice"] for entry in wait_for_answers(server, ballot["id"], ana)] == [[1]]
