"""Leadership responses: posting with commitments, who is told (once), judgement, clocks and reminders."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models.accounts import Role
from app.models.petitions import Delivery, Petition, PetitionEvent
from app.models.responses import Commitment, CommitmentUpdate, Judgement, PetitionResponse
from app.moderation import service as moderation
from app.responses import delivery
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, count_rows, make_user, outbox, sign_in_as

pytestmark = pytest.mark.one_database

RESPONSE = {
    "status": "partially_accepted",
    "summary": "We will stop screen recording by March.",
    "details": "Recording ends for **everyone**.\n\n- keystrokes\n- screens",
    "commitments.0.text": "Stop screen recording",
    "commitments.0.owner": "CTO",
    "commitments.0.due_on": "2027-03-31",
}


@pytest.fixture
def petition(db, rt) -> Petition:
    petition = factories.open_petition(db, rt)
    due = rt.clock.now() + timedelta(days=14)
    db.execute(
        update(Petition)
        .where(Petition.id == petition.id)
        .values(response_threshold_reached_at=rt.clock.now(), response_due_at=due)
    )
    db.commit()
    db.refresh(petition)
    return petition


@pytest.fixture
def responder(db):
    return make_user(db, email="riley@example.org", name="Riley Responder", password=None, roles=(Role.responder,))


def events(db: Session, petition: Petition) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            select(PetitionEvent.kind).where(PetitionEvent.petition_id == petition.id).order_by(PetitionEvent.id)
        )
    )


def test_a_responder_posts_a_response_and_the_opted_in_are_told_once(
    browser: Browser,
    db,
    rt,
    petition,
    responder,
    sessions,
) -> None:
    opted_in, quiet, follower = factories.worker(db), factories.worker(db), factories.worker(db)
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=opted_in, visibility="public", notify_updates=True)
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=quiet, visibility="organizers", notify_updates=False)
    from app.petitions import service as petitions

    petitions.follow(db=db, rt=rt, petition=petition, user=follower)
    db.commit()
    sign_in_as(browser, db, responder)
    assert browser.get("/responders").text.count(petition.title) >= 1
    response = browser.post(f"/petitions/{petition.id}/respond", RESPONSE)
    assert response.status_code == 303
    page = browser.get(f"/petitions/{petition.id}").text
    assert "We will stop screen recording by March." in page and "<strong>everyone</strong>" in page
    assert "Stop screen recording" in page and "Partially accepted" in page
    db.refresh(petition)
    assert petition.first_response_at == rt.clock.now()
    assert "response_posted" in events(db, petition)
    assert "No response yet" not in page

    before = len(outbox(db))
    assert delivery.deliver_notifications(sessions=sessions, rt=rt, batch=1) == 3
    assert delivery.deliver_notifications(sessions=sessions, rt=rt) == 0, "each recipient once"
    told = {message.to_address for message in outbox(db)[before:]}
    creator = db.get(type(responder), petition.creator_id)
    assert told == {opted_in.email, follower.email, creator.email}, "the organizer too, following or not"
    assert count_rows(db, "deliveries") == 3
    assert browser.get("/responders").text.count(f"/petitions/{petition.id}/respond") == 0, "answered: off the list"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"status": "maybe"}, "status"),
        ({"summary": ""}, "summary"),
        ({"summary": "x" * 201}, "summary"),
        ({"commitments.0.due_on": "2020-01-01"}, "commitments.0.due_on"),
        ({"commitments.0.text": ""}, "commitments.0.text"),
    ],
)
def test_bad_responses_are_refused_and_write_nothing(
    browser: Browser,
    db,
    petition,
    responder,
    changes,
    field,
) -> None:
    sign_in_as(browser, db, responder)
    response = browser.post(f"/petitions/{petition.id}/respond", {**RESPONSE, **changes})
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert count_rows(db, "petition_responses") == 0 and count_rows(db, "commitments") == 0
    assert count_rows(db, "notifications") == 0


def test_a_draft_cannot_be_answered(browser: Browser, db, rt, responder) -> None:
    draft = factories.draft_petition(db, rt)
    rejected = factories.petition_in_moderation(db, rt)
    moderation.reject(db=db, rt=rt, petition=rejected, moderator=factories.moderator(db), code="duplicate", note=None)
    db.commit()
    sign_in_as(browser, db, responder)
    # A draft is not a responder's to read (issue #21): no such petition. A public rejection can be read, not answered.
    for petition, refused in ((draft, 404), (rejected, 409)):
        response = browser.api(
            "POST",
            f"/api/v1/petitions/{petition.id}/responses",
            {"status": "accepted", "summary": "Yes", "details": "Yes."},
        )
        assert response.status_code == refused and count_rows(db, "petition_responses") == 0


def test_markdown_in_a_response_is_rendered_inert(browser: Browser, db, petition, responder) -> None:
    sign_in_as(browser, db, responder)
    payload = (
        "<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)> "
        "<svg onload=alert(4)> [ok](https://example.org)"
    )
    browser.post(f"/petitions/{petition.id}/respond", {**RESPONSE, "details": payload})
    page = browser.get(f"/petitions/{petition.id}").text
    for dangerous in ("<script>alert", 'href="javascript:', "<svg"):
        assert dangerous not in page
    # The only picture is the share row's QR code of the petition's own address.
    assert re.findall(r"<img\b[^>]*>", page) == re.findall(r'<img\b[^>]*src="/petitions/\d+/qr\.svg"[^>]*>', page)
    assert len(re.findall(r"<img\b", page)) == 1
    assert '<a href="https://example.org" rel="nofollow ugc noopener">ok</a>' in page


def test_commitments_are_updated_and_flagged_when_overdue(
    browser: Browser,
    db,
    rt,
    clock,
    petition,
    responder,
    sessions,
) -> None:
    sign_in_as(browser, db, responder)
    browser.post(f"/petitions/{petition.id}/respond", {**RESPONSE, "commitments.0.due_on": "2026-12-01"})
    commitment = db.scalar(select(Commitment))
    response = browser.post(f"/commitments/{commitment.id}/update", {"status": "in_progress", "note": "Started"})
    assert response.status_code == 303
    db.refresh(commitment)
    assert commitment.status == "in_progress" and count_rows(db, "commitment_updates") == 1
    assert db.scalar(select(CommitmentUpdate.note)) == "Started"
    assert events(db, petition)[-1] == "commitment_updated"
    unchanged = browser.post(f"/commitments/{commitment.id}/update", {"status": "in_progress"})
    assert "Change the status, or add a progress note." in browser.get(unchanged.headers["location"]).text
    assert "Commitments past their due date" in browser.get("/responders").text
    assert "Stop screen recording" not in browser.get("/responders").text.split("Commitments past their due date")[1]
    clock.advance(timedelta(days=10))
    assert "Stop screen recording" in browser.get("/responders").text.split("Commitments past their due date")[1]
    assert "overdue" in browser.get(f"/petitions/{petition.id}").text


def test_organizers_judge_a_response_and_ask_for_a_follow_up(
    browser: Browser,
    new_browser,
    db,
    rt,
    petition,
    responder,
) -> None:
    leadership = sign_in_as(new_browser(), db, responder)
    leadership.post(f"/petitions/{petition.id}/respond", RESPONSE)
    response_id = db.scalar(select(PetitionResponse.id))
    creator = db.get(type(responder), petition.creator_id)
    sign_in_as(browser, db, creator)
    url = f"/petitions/{petition.id}/responses/{response_id}/judgement"
    refused = browser.post(url, {"answers": "no"})
    assert "Say what the response leaves unanswered." in browser.get(refused.headers["location"]).text
    assert count_rows(db, "response_judgements") == 0
    before = len(outbox(db))
    judged = browser.post(url, {"answers": "no", "reason": "March is too late.", "follow_up": "1"})
    assert judged.status_code == 303
    page = browser.get(f"/petitions/{petition.id}").text
    assert "does not answer" in page and "March is too late." in page and "follow-up" in page
    assert [m.to_address for m in outbox(db)[before:]] == [responder.email]
    assert events(db, petition)[-2:] == ["response_judged", "follow_up_requested"]
    dashboard = leadership.get("/responders").text
    assert "follow-up requested" in dashboard
    leadership.post(f"/petitions/{petition.id}/respond", {**RESPONSE, "summary": "By January, then."})
    db.expire_all()
    assert db.scalar(select(Judgement.follow_up_requested)) is False
    assert "follow-up requested" not in leadership.get("/responders").text


def test_a_worker_cannot_judge_and_a_judgement_needs_the_petitions_response(
    browser: Browser,
    db,
    rt,
    petition,
    responder,
) -> None:
    other = factories.open_petition(db, rt)
    sign_in_as(browser, db, db.get(type(responder), petition.creator_id))
    response = browser.api("PUT", f"/api/v1/petitions/{petition.id}/responses/999/judgement", {"answers": True})
    assert response.status_code == 404
    assert (
        browser.api("PUT", f"/api/v1/petitions/{other.id}/responses/1/judgement", {"answers": True}).status_code == 403
    )


def test_reminders_go_before_and_at_the_due_date_once_each(db, rt, clock, petition, responder, sessions) -> None:
    assert delivery.send_reminders(sessions=sessions, rt=rt) == 0, "not yet: due in 14 days"
    clock.advance(timedelta(days=12))
    assert delivery.send_reminders(sessions=sessions, rt=rt) == 1
    assert delivery.send_reminders(sessions=sessions, rt=rt) == 0
    assert outbox(db)[-1].subject.startswith("Response due soon")
    clock.advance(timedelta(days=3))
    assert delivery.send_reminders(sessions=sessions, rt=rt) == 1
    assert outbox(db)[-1].subject.startswith("Response overdue")
    assert delivery.send_reminders(sessions=sessions, rt=rt) == 0
    assert count_rows(db, "deliveries") == 2
    keys = set(db.scalars(select(Delivery.event_key)))
    assert keys == {f"reminder:{petition.id}:soon", f"reminder:{petition.id}:due"}


def test_the_due_list_marks_overdue_petitions(browser: Browser, db, clock, petition, responder) -> None:
    sign_in_as(browser, db, responder)
    [item] = browser.api("GET", "/api/v1/responders/due").json()
    assert item["petition_id"] == petition.id and item["overdue"] is False
    clock.advance(timedelta(days=15))
    [item] = browser.api("GET", "/api/v1/responders/due").json()
    assert item["overdue"] is True
    assert "overdue" in browser.get("/responders").text


def test_the_api_posts_and_lists_responses(browser: Browser, db, petition, responder) -> None:
    sign_in_as(browser, db, responder)
    created = browser.api(
        "POST",
        f"/api/v1/petitions/{petition.id}/responses",
        {
            "status": "accepted",
            "summary": "Done.",
            "details": "All of it.",
            "commitments": [{"text": "Delete the recordings", "owner": "CISO", "due_on": "2027-01-15"}],
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert body["commitments"][0]["status"] == "planned" and body["judgement"] is None
    listed = browser.api("GET", f"/api/v1/petitions/{petition.id}/responses").json()
    assert [item["summary"] for item in listed] == ["Done."]
    bad = browser.api(
        "POST",
        f"/api/v1/petitions/{petition.id}/responses",
        {"status": "accepted", "summary": "x", "details": "y", "commitments": [{"text": "", "owner": "CISO"}]},
    )
    assert bad.status_code == 422 and count_rows(db, "petition_responses") == 1


def test_the_judgement_and_commitment_forms_show_their_errors_inside_themselves(
    browser: Browser,
    new_browser,
    db,
    rt,
    petition,
    responder,
) -> None:
    """A refused small form on the petition page lists its errors first inside it, each linked to its control, and
    marks the controls (issue #22), as the moderation review's forms do."""
    leadership = sign_in_as(new_browser(), db, responder)
    leadership.post(f"/petitions/{petition.id}/respond", RESPONSE)
    response_id = db.scalar(select(PetitionResponse.id))
    commitment = db.scalar(select(Commitment))
    sign_in_as(browser, db, db.get(type(responder), petition.creator_id))

    refused = browser.post(f"/petitions/{petition.id}/responses/{response_id}/judgement", {"reason": "x" * 1001})
    judgement_form = browser.get(refused.headers["location"]).text.split('class="stack judgement-form"')[1]
    judgement_form = judgement_form.split("</form>")[0]
    assert f'<a href="#answers-yes-{response_id}">Say whether the response answers the petition.</a>' in judgement_form
    assert f'<a href="#reason-{response_id}">' in judgement_form, "both errors in one round"
    assert 'aria-invalid="true"' in judgement_form
    assert count_rows(db, "response_judgements") == 0

    refused = leadership.post(f"/commitments/{commitment.id}/update", {"status": "in_progress", "note": "x" * 1001})
    page = leadership.get(refused.headers["location"]).text
    commitment_form = page.split(f'action="/commitments/{commitment.id}/update"')[1].split("</form>")[0]
    assert f'<a href="#commitment-note-{commitment.id}">' in commitment_form
    assert f'id="commitment-note-{commitment.id}" name="note" maxlength="1000" aria-invalid="true"' in commitment_form
