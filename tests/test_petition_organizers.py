"""Organizers and followers: co-organizers, updates to signers, following a petition."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models.petitions import Follow, PetitionOrganizer, PetitionUpdate
from app.petitions import service
from tests import factories
from tests.conftest import (
    Browser,
    capture_logs,
    count_rows,
    outbox,
    sign_in_as,
)
from tests.petition_steps import (
    fan_out,
    rows,
    sign,
    visitor,
)

pytestmark = pytest.mark.one_database

# -- organizers -------------------------------------------------------------------------------------------------


def test_the_creator_adds_a_co_organizer_who_can_then_post_updates(new_browser, db, rt) -> None:
    creator = factories.worker(db, name="Casey Creator")
    colleague = factories.worker(db, name="Cory Coorganizer")
    petition = factories.open_petition(db, rt, creator)

    response = visitor(new_browser, db, creator).post(
        f"/petitions/{petition.id}/organizers", {"email": colleague.email.upper()}
    )

    assert response.status_code == 303
    [invitation] = outbox(db, colleague.email)
    assert invitation.template == "organizer_invited"
    co = visitor(new_browser, db, colleague)
    link = re.search(r"http://testserver(/\S+/organizers/invitations/\S+)", invitation.body_text)
    assert link is not None
    accept = link.group(1)
    assert "Accept and organize" in co.get(accept).text
    assert co.post(accept).status_code == 303
    assert (
        db.scalar(
            select(PetitionOrganizer.is_creator).where(
                PetitionOrganizer.petition_id == petition.id, PetitionOrganizer.user_id == colleague.id
            )
        )
        is False
    )
    posted = co.post(f"/petitions/{petition.id}/updates", {"title": "We reached HR", "body": "They will reply."})
    assert posted.status_code == 303
    update = db.scalar(select(PetitionUpdate).where(PetitionUpdate.petition_id == petition.id))
    assert update is not None and (update.author_id, update.title) == (colleague.id, "We reached HR")
    assert "We reached HR" in visitor(new_browser, db).get(f"/petitions/{petition.id}").text


def test_only_the_creator_adds_organizers(new_browser, db, rt) -> None:
    creator, colleague, third = factories.worker(db), factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    service.add_organizer(db=db, rt=rt, petition=petition, actor=creator, raw_email=colleague.email)
    db.commit()
    before = rows(db)

    response = visitor(new_browser, db, colleague).api(
        "POST", f"/api/v1/petitions/{petition.id}/organizers", {"email": third.email}
    )

    assert response.status_code == 403 and rows(db) == before


def test_organizers_can_send_at_most_three_updates_a_week(new_browser, db, rt, clock) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    organizer = visitor(new_browser, db, creator)
    for number in range(3):
        response = organizer.api(
            "POST", f"/api/v1/petitions/{petition.id}/updates", {"title": f"Update {number}", "body": "News."}
        )
        assert response.status_code == 201
        clock.advance(timedelta(days=1))
    before = rows(db)

    fourth = organizer.api("POST", f"/api/v1/petitions/{petition.id}/updates", {"title": "Update 4", "body": "News."})

    assert fourth.status_code == 429
    assert fourth.json()["error"]["message"] == (
        "Organizers can send at most 3 updates a week, so signers keep reading them. "
        "The next one can go out on 01 December at 09:00 UTC."
    )
    assert rows(db) == before
    clock.advance(timedelta(days=4))  # a week after the first
    again = organizer.api("POST", f"/api/v1/petitions/{petition.id}/updates", {"title": "Update 4", "body": "News."})
    assert again.status_code == 201


def test_the_update_form_refuses_a_fourth_update_in_a_week_with_429(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    for number in range(3):
        assert (
            browser.post(
                f"/petitions/{petition.id}/updates", {"title": f"Update {number}", "body": "News."}
            ).status_code
            == 303
        )
    before = rows(db)

    fourth = browser.post(f"/petitions/{petition.id}/updates", {"title": "Update 4", "body": "News."})

    assert rows(db) == before
    assert fourth.status_code == 429 and "at most 3 updates a week" in fourth.text


def test_an_update_goes_to_followers_and_to_signers_who_asked_for_updates(new_browser, db, rt, connection) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    opted_in = sign(db, rt, petition, notify_updates=True)
    opted_in_privately = sign(db, rt, petition, notify_updates=True, visibility="organizers")
    not_opted_in = sign(db, rt, petition, notify_updates=False)
    follower = factories.worker(db)
    assert visitor(new_browser, db, follower).post(f"/petitions/{petition.id}/follow").status_code == 303
    following_signer = sign(db, rt, petition, notify_updates=True)
    service.follow(db=db, rt=rt, petition=petition, user=following_signer)
    db.commit()

    response = visitor(new_browser, db, creator).post(
        f"/petitions/{petition.id}/updates", {"title": "Meeting on Monday", "body": "HR agreed to meet."}
    )

    assert response.status_code == 303
    assert fan_out(connection, rt) == 4, "four recipients, queued two at a time by the worker"
    assert fan_out(connection, rt) == 0, "each once"
    told = [message.to_address for message in outbox(db) if message.template == "petition_update"]
    assert sorted(told) == sorted([opted_in.email, opted_in_privately.email, follower.email, following_signer.email])
    assert not_opted_in.email not in told
    message = outbox(db, follower.email)[-1]
    assert message.subject == f'Update on "{petition.title}": Meeting on Monday'
    assert "HR agreed to meet." in message.body_text


def test_an_update_cannot_be_posted_before_the_petition_opens(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.api("POST", f"/api/v1/petitions/{petition.id}/updates", {"title": "Hi", "body": "Early."})

    assert response.status_code == 409 and count_rows(db, "petition_updates") == 0


def test_a_co_organizer_cannot_remove_another_organizer_but_can_remove_themself(new_browser, db, rt) -> None:
    creator, first, second = factories.worker(db), factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    for colleague in (first, second):
        service.add_organizer(db=db, rt=rt, petition=petition, actor=creator, raw_email=colleague.email)
    db.commit()
    co = visitor(new_browser, db, first)

    assert co.post(f"/petitions/{petition.id}/organizers/{second.id}/remove").status_code == 403
    assert co.post(f"/petitions/{petition.id}/organizers/{creator.id}/remove").status_code == 403
    assert co.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{second.id}").status_code == 403
    assert count_rows(db, "petition_organizers") == 3

    assert co.post(f"/petitions/{petition.id}/organizers/{first.id}/remove").status_code == 303
    remaining = set(db.scalars(select(PetitionOrganizer.user_id).where(PetitionOrganizer.petition_id == petition.id)))
    assert remaining == {creator.id, second.id}
    assert co.post(f"/petitions/{petition.id}/updates", {"title": "Hi", "body": "Still here?"}).status_code == 403


def test_the_creator_removes_a_co_organizer_but_not_themself(browser: Browser, db, rt) -> None:
    creator, colleague = factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    service.add_organizer(db=db, rt=rt, petition=petition, actor=creator, raw_email=colleague.email)
    db.commit()
    sign_in_as(browser, db, creator)

    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{creator.id}").status_code == 409
    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{colleague.id}").status_code == 204
    assert browser.api("DELETE", f"/api/v1/petitions/{petition.id}/organizers/{colleague.id}").status_code == 404
    assert count_rows(db, "petition_organizers") == 1


# -- following --------------------------------------------------------------------------------------------------


def test_following_twice_keeps_one_follow_and_unfollowing_removes_it(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    user = factories.worker(db)
    sign_in_as(browser, db, user)

    first = browser.post(f"/petitions/{petition.id}/follow")
    second = browser.post(f"/petitions/{petition.id}/follow")

    assert first.status_code == second.status_code == 303
    assert count_rows(db, "petition_follows") == 1
    page = browser.get(f"/petitions/{petition.id}").text
    assert "You already follow this petition." in page and "Stop following" in page
    for _ in range(2):
        assert browser.post(f"/petitions/{petition.id}/unfollow").status_code == 303
    assert count_rows(db, "petition_follows") == 0
    assert "Follow this petition" in browser.get(f"/petitions/{petition.id}").text


def test_following_through_the_api_is_idempotent(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    user = factories.worker(db)
    sign_in_as(browser, db, user)

    assert [browser.api("PUT", f"/api/v1/petitions/{petition.id}/follow").status_code for _ in range(2)] == [204, 204]
    assert db.scalars(select(Follow.user_id).where(Follow.petition_id == petition.id)).all() == [user.id]
    assert [browser.api("DELETE", f"/api/v1/petitions/{petition.id}/follow").status_code for _ in range(2)] == [
        204,
        204,
    ]
    assert db.scalar(select(func.count()).select_from(Follow)) == 0


def test_a_petition_that_is_not_published_cannot_be_followed(browser: Browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    sign_in_as(browser, db, factories.worker(db))

    assert browser.api("PUT", f"/api/v1/petitions/{petition.id}/follow").status_code == 404
    assert count_rows(db, "petition_follows") == 0


def test_an_update_waits_while_its_petition_is_hidden_and_a_failing_one_is_set_aside(
    db, rt, connection, monkeypatch
) -> None:
    from app.moderation import service as moderation
    from app.petitions.schemas import UpdateCreate
    from app.responses import delivery

    creator, follower, voided = factories.worker(db), factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    service.follow(db=db, rt=rt, petition=petition, user=follower)
    sign(db, rt, petition, voided, notify_updates=True)
    from app.signatures import integrity

    integrity.invalidate(
        db=db,
        rt=rt,
        petition=petition,
        moderator=factories.moderator(db),  # five accounts at least
        entries=[voided.email, *(factories.worker(db).email for _ in range(4))],
        reason="A compromised account.",
        expected=1,
    )
    service.post_update(db=db, rt=rt, petition=petition, actor=creator, form=UpdateCreate(title="News", body="More."))
    moderator = factories.moderator(db)
    moderation.hide(db=db, rt=rt, petition=petition, moderator=moderator, reason="Names a colleague.")
    db.commit()
    assert fan_out(connection, rt) == 0, "nobody hears about a hidden petition"
    moderation.restore(db=db, rt=rt, petition=petition, moderator=moderator)
    db.commit()
    assert fan_out(connection, rt) == 1
    assert [message.template for message in outbox(db, follower.email)][-1] == "petition_update"
    assert not [message for message in outbox(db, voided.email) if message.template == "petition_update"], (
        "a voided signature is no longer in the audience"
    )

    # An event that fails is set aside; the next one still goes out.
    service.post_update(db=db, rt=rt, petition=petition, actor=creator, form=UpdateCreate(title="Two", body="B."))
    service.post_update(db=db, rt=rt, petition=petition, actor=creator, form=UpdateCreate(title="Three", body="C."))
    db.commit()
    original = delivery._context
    calls = []

    def failing_once(session, notification):
        calls.append(notification.id)
        if len(calls) == 1:
            raise RuntimeError("a template bug")
        return original(session, notification)

    monkeypatch.setattr(delivery, "_context", failing_once)
    with capture_logs() as logs:
        assert fan_out(connection, rt) == 1
    assert "an announcement could not be delivered" in logs.text
    assert [message.subject for message in outbox(db, follower.email)][-1].endswith(": Three")
