"""The polls' pages (issue #25): creating through the form with every bad input, who sees what, suppression below k
and until close in the page, the CSV and the JSON, and a ratification's verdict on the timeline and the scoreboard."""

from __future__ import annotations

import io
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from app.ballots import service as ballots
from app.core.clock import to_the_hour
from app.models.accounts import Role
from app.models.ballots import Ballot, BallotAnswer, BallotAudience, BallotKind
from app.models.petitions import Petition
from app.moderation import service as moderation
from app.reports import tally
from app.reports.pdf import tally_pdf
from app.responses import schemas as response_schemas
from app.responses import service as responses
from tests import factories
from tests.conftest import Browser, sign_in_as

pytestmark = pytest.mark.one_database


def ballot_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Ballot))


def hour_from_now(rt, hours: int) -> str:
    return (to_the_hour(rt.clock.now()) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def pulse_form(rt, **changes: str) -> dict[str, str]:
    form = {
        "question": "Which should leadership fix first?",
        "kind": "single",
        "options": "Pay\nHours\nRemote work",
        "max_choices": "",
        "closes_at": hour_from_now(rt, 48),
        "min_answers": str(rt.settings.min_group_size),
    }
    form.update(changes)
    return form


def answer(db, ballot: Ballot, *choices: list[int]) -> None:
    """Counted answers as a batch writes them (the counting path is tested in tests/test_ballots*.py)."""
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
    db.execute(
        update(Ballot).where(Ballot.id == ballot.id).values(answers_counted=Ballot.answers_counted + len(choices))
    )
    db.commit()
    db.refresh(ballot)


@pytest.fixture
def responder(db):
    return factories.worker(db, name="Riley Responder", roles=(Role.responder,))


def pulse(db, rt, responder, **changes: object) -> Ballot:
    values: dict[str, Any] = {
        "kind": BallotKind.single,
        "question": "Which should leadership fix first?",
        "options": ["Pay", "Hours", "Remote work"],
        "max_choices": None,
        "audience": BallotAudience.members,
        "opens_at": None,
        "closes_at": rt.clock.now() + timedelta(days=2),
    }
    values.update(changes)
    ballot = ballots.create(db, rt, actor=responder, petition=None, **values)
    db.commit()
    return ballot


def close(clock, rt, ballot: Ballot) -> None:
    """Past its close and the last batch after it: the result is final."""
    clock.advance(ballot.closes_at - rt.clock.now() + timedelta(seconds=rt.settings.anonymous_batch_seconds + 1))


# -- creating ---------------------------------------------------------------------------------------------------


def test_a_responder_opens_a_pulse_poll_through_the_form(browser: Browser, db, rt, responder) -> None:
    sign_in_as(browser, db, responder)
    page = browser.get("/polls/new")
    assert page.status_code == 200 and 'name="question"' in page.text
    sent = browser.post("/polls/new", pulse_form(rt))
    assert sent.status_code == 303
    ballot = db.scalar(select(Ballot))
    assert sent.headers["location"] == f"/polls/{ballot.id}"
    shown = browser.get(f"/polls/{ballot.id}")
    assert "Which should leadership fix first?" in shown.text and "Remote work" in shown.text
    assert "data-ballot-form" in shown.text and "undersigned client answer" in shown.text
    assert 'data-hidden-among="0"' in shown.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"options": ""}, "options", "Give at least 2 options."),
        ({"options": "\n".join(f"Option {n}" for n in range(100))}, "options", "Give at most 20 options."),
        ({"options": "Pay\npay"}, "options", "Two options say the same thing"),
        ({"question": "  "}, "question", "Write the question."),
        ({"closes_at": "2020-01-01T09:00"}, "closes_at", "The closing time has passed"),
        ({"closes_at": "next week"}, "closes_at", "Enter a date and time like 2027-03-31 17:00."),
        ({"kind": "ranked", "max_choices": "9"}, "max_choices", "Allow between 1 and 3 choices."),
        ({"kind": "referendum"}, "kind", "Choose one of the options."),
        ({"min_answers": "1"}, "min_answers", "fewer would let a result be traced"),
        ({"min_answers": "many"}, "min_answers", "Enter a whole number, like 12."),
        ({"kind": "scale"}, "options", "An agreement scale has its five fixed options"),
    ],
)
def test_every_bad_input_is_refused_in_plain_words_and_nothing_is_saved(
    browser: Browser, db, rt, responder, changes: dict[str, str], field: str, message: str
) -> None:
    sign_in_as(browser, db, responder)
    refused = browser.post("/polls/new", pulse_form(rt, **changes))
    assert refused.status_code == 422
    assert message in refused.text
    assert f'href="#{field}"' in refused.text  # the summary links to the control
    assert "Input should" not in refused.text and "validation error" not in refused.text
    assert ballot_count(db) == 0


def test_a_worker_without_a_role_cannot_open_a_pulse_poll(browser: Browser, db, rt) -> None:
    sign_in_as(browser, db, factories.worker(db))
    assert browser.get("/polls/new").status_code == 403
    assert browser.post("/polls/new", pulse_form(rt)).status_code == 403
    assert ballot_count(db) == 0


def test_organizers_put_a_question_to_their_signers(browser: Browser, db, rt) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    sign_in_as(browser, db, organizer)
    assert browser.get(f"/petitions/{petition.id}").text.count(f"/petitions/{petition.id}/polls/new") == 1
    sent = browser.post(
        f"/petitions/{petition.id}/polls/new",
        pulse_form(rt, audience="signers", kind="multiple", max_choices="2", question="Which demand goes first?"),
    )
    assert sent.status_code == 303
    ballot = db.scalar(select(Ballot))
    assert (ballot.petition_id, ballot.audience, ballot.max_choices) == (petition.id, "signers", 2)
    listed = browser.get(f"/petitions/{petition.id}").text
    assert "Which demand goes first?" in listed and f'href="/polls/{ballot.id}"' in listed


# -- who sees what ------------------------------------------------------------------------------------------------


def test_a_pulse_poll_is_listed_for_members_and_on_the_home_page(browser: Browser, db, rt, responder) -> None:
    ballot = pulse(db, rt, responder)
    sign_in_as(browser, db, factories.worker(db))
    assert f'href="/polls/{ballot.id}"' in browser.get("/polls").text
    assert f'href="/polls/{ballot.id}"' in browser.get("/").text
    assert browser.get(f"/polls/{ballot.id}").status_code == 200


def test_a_petitions_poll_is_seen_by_whoever_may_read_the_petition(browser: Browser, new_browser, db, rt) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = ballots.create(
        db,
        rt,
        actor=organizer,
        petition=petition,
        kind=BallotKind.single,
        question="Strike?",
        options=["Yes", "No"],
        max_choices=None,
        audience=BallotAudience.signers,
        opens_at=None,
        closes_at=rt.clock.now() + timedelta(days=2),
    )
    db.commit()
    reader = sign_in_as(new_browser(), db, factories.worker(db))
    assert reader.get(f"/polls/{ballot.id}").status_code == 200
    assert f'href="/polls/{ballot.id}"' in reader.get("/polls").text
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert reader.get(f"/polls/{ballot.id}").status_code == 404
    assert reader.get(f"/polls/{ballot.id}/results.json").status_code == 404
    assert f'href="/polls/{ballot.id}"' not in reader.get("/polls").text


# -- suppression --------------------------------------------------------------------------------------------------


def test_results_stay_hidden_until_close_then_show_only_from_k_answers(
    browser: Browser, db, rt, clock, responder
) -> None:
    k = rt.settings.min_group_size
    ballot = pulse(db, rt, responder)
    answer(db, ballot, *([[0]] * (k - 1)))
    sign_in_as(browser, db, factories.worker(db))

    def views() -> tuple[str, str, dict[str, Any]]:
        page = browser.get(f"/polls/{ballot.id}").text
        csv_text = browser.get(f"/polls/{ballot.id}/results.csv").text
        data = browser.get(f"/polls/{ballot.id}/results.json").json()
        return page, csv_text, data

    page, csv_text, data = views()  # open: hidden
    assert "Results are shown once the poll closes" in page and "ballot-results" not in page
    assert data["status"] == "hidden" and "results" not in data and data["answered"] is None
    assert "hidden until the poll closes" in csv_text and "Pay" not in csv_text.split("status")[1]

    close(clock, rt, ballot)
    page, csv_text, data = views()  # closed, one answer short of k
    assert "Not enough answers yet" in page and "<svg" not in page
    assert data["status"] == "not_enough" and "results" not in data
    assert "not enough answers yet" in csv_text and "position" not in csv_text

    answer(db, ballot, [1])  # the k-th, written by the last batch
    page, csv_text, data = views()
    assert data["status"] == "shown" and data["answered"] == k
    assert data["results"][0] == {"position": 0, "answers": k - 1, "share": round(100 * (k - 1) / k)}
    assert "<svg" in page and "ballot-results" in page
    assert f"0,Pay,{k - 1}," in csv_text


def test_live_results_show_while_open_above_k(browser: Browser, db, rt, responder) -> None:
    ballot = pulse(db, rt, responder, results_live=True)
    answer(db, ballot, *([[2]] * rt.settings.min_group_size))
    sign_in_as(browser, db, factories.worker(db))
    assert browser.get(f"/polls/{ballot.id}/results.json").json()["status"] == "shown"


def test_a_ranked_result_shows_every_round(browser: Browser, db, rt, clock, responder) -> None:
    ballot = pulse(db, rt, responder, kind=BallotKind.ranked, max_choices=3)
    answer(db, ballot, [0, 1], [0, 2], [1, 0], [1, 0], [2, 1], [2, 0])
    close(clock, rt, ballot)
    sign_in_as(browser, db, factories.worker(db))
    page = browser.get(f"/polls/{ballot.id}").text
    assert "Round 1" in page and "Round 2" in page and "wins, by instant runoff" in page
    data = browser.get(f"/polls/{ballot.id}/results.json").json()
    assert len(data["rounds"]) >= 2 and data["winner"] in ("Pay", "Hours", "Remote work")


def test_the_author_closes_a_poll_early(browser: Browser, db, rt, responder) -> None:
    ballot = pulse(db, rt, responder)
    sign_in_as(browser, db, responder)
    assert "Close the poll now" in browser.get(f"/polls/{ballot.id}").text
    assert browser.post(f"/polls/{ballot.id}/close", {}).status_code == 303
    db.refresh(ballot)
    assert ballot.closed_early


def test_someone_else_cannot_close_a_poll(browser: Browser, db, rt, responder) -> None:
    ballot = pulse(db, rt, responder)
    sign_in_as(browser, db, factories.worker(db))
    assert "Close the poll now" not in browser.get(f"/polls/{ballot.id}").text
    refused = browser.post(f"/polls/{ballot.id}/close", {})
    assert refused.status_code == 303  # back to the poll, with the reason
    assert "organizers can close it." in browser.get(refused.headers["location"]).text
    db.refresh(ballot)
    assert not ballot.closed_early


# -- ratification -------------------------------------------------------------------------------------------------


def test_a_ratification_verdict_shows_on_the_timeline_and_the_scoreboard(browser: Browser, db, rt, clock) -> None:
    from app.signatures import service as signatures

    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    signatures.sign(
        db=db, rt=rt, petition_id=petition.id, user=factories.worker(db), visibility="public", notify_updates=False
    )
    db.execute(update(Petition).where(Petition.id == petition.id).values(response_due_at=rt.clock.now()))
    db.commit()
    responder = factories.worker(db, roles=(Role.responder,))
    response = responses.post_response(
        db=db,
        rt=rt,
        petition=petition,
        responder=responder,
        form=response_schemas.ResponseCreate(summary="We will review it.", details="Soon.", status="under_review"),
    )
    db.commit()
    sign_in_as(browser, db, organizer)
    prompt = f"/petitions/{petition.id}/responses/{response.id}/ratify"
    assert prompt in browser.get(f"/petitions/{petition.id}").text
    refused = browser.post(prompt, {"closes_at": "2020-01-01T09:00", "note": ""})
    assert refused.status_code == 422 and "The closing time has passed" in refused.text
    assert ballot_count(db) == 0
    assert browser.post(prompt, {"closes_at": hour_from_now(rt, 72), "note": "Be honest."}).status_code == 303
    ballot = db.scalar(select(Ballot))
    assert ballot.response_id == response.id and ballot.audience == "signers"
    # Yes 3, Partly 1, No 1: accepted by 60% (yes only), partly 20%.
    answer(db, ballot, [0], [0], [0], [1], [2])
    close(clock, rt, ballot)
    timeline = browser.get(f"/petitions/{petition.id}").text
    assert "accepted by 60% of 5 signers who answered (partly: 20%)" in timeline
    board = browser.get("/scoreboard").text
    assert "accepted by 60% of 5 signers who answered (partly: 20%, no: 20%)" in board
    delivery = tally_pdf(tally.build(db=db, rt=rt, petition=petition), organization="Example")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(delivery)).pages)
    assert "accepted by 60% of 5 signers who answered (partly: 20%, no: 20%)" in text


def test_no_verdict_is_published_below_k(browser: Browser, db, rt, clock) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    response = responses.post_response(
        db=db,
        rt=rt,
        petition=petition,
        responder=factories.worker(db, roles=(Role.responder,)),
        form=response_schemas.ResponseCreate(summary="No.", details="No.", status="declined"),
    )
    ballot = ballots.open_ratification(
        db, rt, actor=organizer, petition=petition, response=response, closes_at=rt.clock.now() + timedelta(days=1)
    )
    db.commit()
    answer(db, ballot, *([[0]] * (rt.settings.min_group_size - 1)))
    close(clock, rt, ballot)
    assert "accepted by" not in browser.get(f"/petitions/{petition.id}").text
    assert "accepted by" not in browser.get("/scoreboard").text
    assert tally.build(db=db, rt=rt, petition=petition).ratifications == ()


def test_a_poll_that_opens_later_shows_when_and_takes_no_answer_yet(browser: Browser, db, rt, responder) -> None:
    ballot = pulse(db, rt, responder, opens_at=rt.clock.now() + timedelta(days=1))
    sign_in_as(browser, db, factories.worker(db))
    page = browser.get(f"/polls/{ballot.id}").text
    assert "This poll opens for answers on" in page and "data-ballot-form" not in page
    listing = browser.get("/polls").text
    assert listing.index("Opening soon") < listing.index(f'href="/polls/{ballot.id}"') < listing.index(">Closed<")
