"""The polls' pages in a real browser, once (issue #25): at 360 px and 1280 px none is wider than the screen and axe
finds nothing, with a result shown as a chart, a ranked result's rounds, the answer form, and a refused form; without
JavaScript, the open poll says plainly how to answer instead of showing a form that cannot work."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from app.ballots import service as ballots
from app.core.clock import to_the_hour
from app.models.accounts import User
from app.models.ballots import Ballot, BallotAnswer, BallotAudience, BallotKind
from app.models.petitions import Petition
from tests import accessibility, live_server
from tests.conftest import sign_in_demo

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: open, Ana organizes it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("polls") / "polls.db")
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def polls(server: live_server.LiveServer) -> dict[str, int]:
    """An open pulse poll, and two whose figures show: a single choice (a chart) and a ranked one (its rounds)."""
    app = server.app
    rt = app.state.runtime
    with app.state.sessionmaker() as db:
        people = {
            user.display_name.split()[0]: user for user in db.scalars(select(User).options(selectinload(User.roles)))
        }
        riley, ana = people["Riley"], people["Ana"]
        petition = db.scalar(select(Petition).where(Petition.title == PETITION))

        def make(actor: User, kind: BallotKind, options: list[str], *, petition: Petition | None = None) -> Ballot:
            ballot = ballots.create(
                db,
                rt,
                actor=actor,
                petition=petition,
                kind=kind,
                question=f"Which should come first? ({kind.value})",
                options=options,
                max_choices=None,
                audience=BallotAudience.members,
                opens_at=None,
                closes_at=rt.clock.now() + timedelta(days=3),
                results_live=True,
            )
            db.flush()
            return ballot

        def answer(ballot: Ballot, choices: list[list[int]]) -> None:
            for index, choice in enumerate(choices):
                db.add(
                    BallotAnswer(
                        id=secrets.token_hex(16),
                        ballot_id=ballot.id,
                        credential=secrets.token_hex(32),
                        message=b"m",
                        signature=b"s",
                        revision=1,
                        choice=json.dumps(choice),
                        counted_hour=to_the_hour(ballot.opens_at),
                        superseded=False,
                        log_index=index + 1,
                    )
                )
            db.execute(update(Ballot).where(Ballot.id == ballot.id).values(answers_counted=len(choices)))

        options = ["Pay transparency for every role", "Quiet rooms on every floor", "A four-day week pilot"]
        single = make(riley, BallotKind.single, options)
        answer(single, [[0]] * 4 + [[1]] * 2 + [[2]])
        ranked = make(ana, BallotKind.ranked, options, petition=petition)
        answer(ranked, [[0, 1], [0, 2], [1, 0], [1, 2], [2, 1], [2, 0], [0]])
        db.commit()
        return {"single": single.id, "ranked": ranked.id, "petition": petition.id}


def _check(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width, f"{page.url} at {width} px"
    found = accessibility.violations(page)
    assert not found, f"{page.url} at {width} px:\n{accessibility.describe(found)}"


def test_the_polls_pages_fit_a_phone_and_pass_axe(chromium, server, polls) -> None:
    context = chromium.new_context(base_url=server.base_url, viewport={"width": 360, "height": 800})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in_demo(page, "riley")
        for url in ("/polls", f"/polls/{polls['single']}", f"/polls/{polls['ranked']}", "/polls/new"):
            page.goto(url)
            for width in accessibility.WIDTHS:
                _check(page, width)
        page.goto(f"/polls/{polls['single']}")
        assert page.locator("figure.chart svg[role=img]").count() == 1
        page.goto(f"/polls/{polls['ranked']}")
        assert page.locator("table.rounds").count() == 1
        # A refused form: its summary and each field's error, at both widths.
        page.goto("/polls/new")
        page.get_by_label("Question").fill("Which floor first?")
        page.get_by_label("Options, one per line").fill("\n".join(f"Option {n}" for n in range(100)))
        # The refusal is a new page: waited for, rather than counted the moment the click has sent the form (a run
        # of the suite counted the form's own page, before the answer came).
        with page.expect_navigation():
            page.get_by_role("button", name="Open the poll").click()
        expect(page.locator(".error-summary")).to_have_count(1)
        assert page.locator("#options-error").inner_text() == "Give at most 20 options."
        for width in accessibility.WIDTHS:
            _check(page, width)
        # The organizers' side: the petition page's list of its polls and their form.
        organizer = context.browser.new_context(base_url=server.base_url, viewport={"width": 360, "height": 800})
        try:
            ana = organizer.new_page()
            sign_in_demo(ana, "ana")
            for url in (f"/petitions/{polls['petition']}", f"/petitions/{polls['petition']}/polls/new"):
                ana.goto(url)
                for width in accessibility.WIDTHS:
                    _check(ana, width)
            ana.goto(f"/petitions/{polls['petition']}")
            assert ana.locator(f"#polls a[href='/polls/{polls['ranked']}']").count() == 1
        finally:
            organizer.close()
    finally:
        context.close()


def test_without_javascript_an_open_poll_says_how_to_answer(chromium, server, polls) -> None:
    context = chromium.new_context(base_url=server.base_url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in_demo(page, "chen")
        page.goto(f"/polls/{polls['single']}")
        assert page.locator("[data-ballot-form]").is_hidden()
        note = page.locator("[data-ballot-needs-js]")
        assert note.is_visible() and "undersigned client answer" in note.inner_text()
    finally:
        context.close()
