"""Organizers hear of leadership's answers; every mail says how to stop it (RFC 8058) or why it cannot be stopped;
the account page lists what a person follows, organizes and signed by name, never what they signed anonymously."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Date, select
from sqlalchemy.orm import Session

from app.mail import unsubscribe
from app.mail.sender import deliver_due
from app.models.accounts import Role, User
from app.models.mail import MailOptOut
from app.models.mail_kinds import ESSENTIAL, TEMPLATE_KINDS, MailKind, kind_of
from app.models.petitions import Petition, PetitionOrganizer
from app.models.responses import Commitment, PetitionResponse
from app.models.signatures import Signature
from app.petitions import service as petitions
from app.responses import delivery
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, count_rows, make_settings, make_user, outbox, sign_in_as
from tests.test_anonymous import anonymous_client, open_anonymous, submit, wallet  # noqa: F401 (a fixture)
from tests.test_mail import Inbox, free_port

pytestmark = pytest.mark.one_database

RESPONSE = {
    "status": "accepted",
    "summary": "We will stop screen recording by March.",
    "details": "For everyone.",
    "commitments.0.text": "Stop screen recording",
    "commitments.0.owner": "CTO",
    "commitments.0.due_on": "2027-03-31",
}
UNSUBSCRIBE = re.compile(r"http://testserver(/unsubscribe/[A-Za-z0-9_.-]+)")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def responder(db: Session) -> User:
    return make_user(db, email="riley@example.org", name="Riley Responder", password=None, roles=(Role.responder,))


@pytest.fixture
def organized(db: Session, rt) -> tuple[Petition, User, User]:
    """An open petition with its creator and a co-organizer, neither following it nor signing it."""
    petition = factories.open_petition(db, rt)
    co_organizer = factories.worker(db, name="Cam Co-organizer")
    db.add(
        PetitionOrganizer(petition_id=petition.id, user_id=co_organizer.id, is_creator=False, added_at=rt.clock.now())
    )
    db.commit()
    return petition, db.get_one(User, petition.creator_id), co_organizer


def mail_to(db: Session, user: User, template: str) -> list:
    return [message for message in outbox(db, user.notification_address) if message.template == template]


def unsubscribe_path(body: str) -> str:
    found = UNSUBSCRIBE.search(body)
    assert found, body
    return found.group(1)


def test_every_mail_is_a_kind_a_person_can_stop_or_says_why_it_cannot() -> None:
    templates = {
        path.stem
        for path in (Path(__file__).parent.parent / "templates" / "emails").glob("*.txt")
        if not path.stem.startswith("_")
    }
    assert templates == set(TEMPLATE_KINDS) | set(ESSENTIAL), "a new mail must say which it is"
    assert not set(TEMPLATE_KINDS) & set(ESSENTIAL)
    for template in templates:
        kind_of(template)


def test_every_organizer_hears_of_responses_commitments_and_follow_ups(
    browser: Browser, new_browser, db: Session, rt, organized, responder, sessions
) -> None:
    petition, creator, co_organizer = organized
    leadership = sign_in_as(new_browser(), db, responder)
    assert leadership.post(f"/petitions/{petition.id}/respond", RESPONSE).status_code == 303
    delivery.deliver_notifications(sessions=sessions, rt=rt)
    for organizer in (creator, co_organizer):
        [told] = mail_to(db, organizer, "response_posted")
        assert "We will stop screen recording by March." in told.body_text
        assert unsubscribe_path(told.body_text)

    commitment = db.scalars(select(Commitment)).one()
    # A progress note alone is news too.
    assert (
        leadership.post(
            f"/commitments/{commitment.id}/update", {"status": "planned", "note": "Vendor contract found"}
        ).status_code
        == 303
    )
    delivery.deliver_notifications(sessions=sessions, rt=rt)
    for organizer in (creator, co_organizer):
        [told] = mail_to(db, organizer, "commitment_updated")
        assert "Vendor contract found" in told.body_text

    response_id = db.scalar(select(PetitionResponse.id))
    sign_in_as(browser, db, creator)
    judged = browser.post(
        f"/petitions/{petition.id}/responses/{response_id}/judgement",
        {"answers": "no", "reason": "March is too late.", "follow_up": "1"},
    )
    assert judged.status_code == 303
    [asked] = mail_to(db, co_organizer, "follow_up_asked")
    assert "March is too late." in asked.body_text and creator.display_name in asked.body_text
    assert mail_to(db, creator, "follow_up_asked") == [], "the organizer who asked knows"
    assert len(mail_to(db, responder, "follow_up_requested")) == 1


def test_the_list_unsubscribe_header_and_its_one_click_post_work_signed_out(
    db: Session, rt, organized, responder, sessions, smtp, database_url: str, new_browser
) -> None:
    inbox, port = smtp
    petition, creator, co_organizer = organized
    sign_in_as(new_browser(), db, responder).post(f"/petitions/{petition.id}/respond", RESPONSE)
    delivery.deliver_notifications(sessions=sessions, rt=rt)
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port)
    deliver_due(sessions=sessions, settings=settings, clock=rt.clock)
    [email] = [
        email
        for to, email in inbox.messages
        if to == [creator.email] and email["Subject"].startswith("Leadership responded")
    ]
    header = email["List-Unsubscribe"]
    # One unbroken line: folded, or sent as an encoded word (a link longer than a line was), clients miss it.
    assert re.fullmatch(r"<http://testserver/unsubscribe/[A-Za-z0-9_.-]+>", header), header
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert header[1:-1] in email.get_payload(decode=True).decode(), "the same link in the body"

    # A mail client's one-click unsubscribe: a POST with RFC 8058's body, no cookie, no CSRF token.
    mail_client = new_browser()
    path = header[1:-1].removeprefix("http://testserver")
    done = mail_client.client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200, done.text
    assert "You will get no more updates, corrections and leadership&#39;s responses" in done.text
    [row] = db.scalars(select(MailOptOut)).all()
    assert (row.user_id, row.petition_id, row.kind) == (creator.id, petition.id, "news")
    assert type(row.created_on) is date and isinstance(MailOptOut.__table__.c.created_on.type, Date)

    # The next response reaches the co-organizer and not the organizer who stopped it.
    sign_in_as(new_browser(), db, responder).post(
        f"/petitions/{petition.id}/respond", {**RESPONSE, "summary": "By January, then."}
    )
    delivery.deliver_notifications(sessions=sessions, rt=rt)
    assert len(mail_to(db, creator, "response_posted")) == 1
    assert len(mail_to(db, co_organizer, "response_posted")) == 2
    # Clicking again is harmless.
    assert mail_client.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert count_rows(db, "mail_opt_outs") == 1


def test_mail_that_cannot_be_stopped_says_so_and_carries_no_header(
    browser: Browser, db: Session, rt, sessions, smtp, database_url: str
) -> None:
    inbox, port = smtp
    browser.post("/signup", {"email": "nia@example.org", "display_name": "Nia", "password": "long enough password"})
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port)
    assert deliver_due(sessions=sessions, settings=settings, clock=rt.clock) == 1
    [(_, email)] = inbox.messages
    assert email["List-Unsubscribe"] is None and email["List-Unsubscribe-Post"] is None
    body = email.get_payload(decode=True).decode()
    assert "cannot be turned off" in body and "/unsubscribe/" not in body


def test_the_link_asks_first_and_works_signed_in_as_anyone(
    browser: Browser, new_browser, db: Session, rt, organized
) -> None:
    petition, creator, _ = organized
    path = unsubscribe.link(rt=rt, user_id=creator.id, kind=MailKind.digest, petition_id=petition.id).removeprefix(
        "http://testserver"
    )
    signed_out = new_browser()
    page = signed_out.get(path)
    assert page.status_code == 200 and "Stop this mail" in page.text and 'method="post"' in page.text
    assert petition.title in page.text
    assert count_rows(db, "mail_opt_outs") == 0, "opening the link (as a mail scanner does) changes nothing"
    # The page's own button, pressed signed in (as the owner, with the page's CSRF token).
    sign_in_as(browser, db, creator)
    assert browser.post(path).status_code == 200
    assert db.get(MailOptOut, (creator.id, petition.id, "digest")) is not None
    assert "already off" in browser.get(path).text
    # The account page can turn it back on.
    assert f'id="mail-{petition.id}-digest"' in browser.get("/account").text
    browser.post(
        f"/account/petitions/{petition.id}/mail", {"mail_news": "1", "mail_organizing": "1", "mail_digest": "1"}
    )
    assert count_rows(db, "mail_opt_outs") == 0
    # Replies to comments: the whole account, the same switch as the account page's.
    replies = unsubscribe.link(rt=rt, user_id=creator.id, kind=MailKind.replies, petition_id=None)
    assert new_browser().post(replies.removeprefix("http://testserver"), csrf=False).status_code == 200
    db.expire_all()
    assert db.get_one(User, creator.id).notify_comment_replies is False


def _forge(token: str, payload: object) -> str:
    """The token's payload replaced, its signature kept: what someone editing a link would try."""
    _, signature = token.rsplit(".", 1)
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{body}.{signature}"


@pytest.mark.parametrize("tamper", ["other_account", "other_kind", "cut_short", "made_up", "too_long"])
def test_a_tampered_link_is_refused_in_plain_words(tamper: str, new_browser, db: Session, rt, organized) -> None:
    petition, creator, co_organizer = organized
    token = unsubscribe.token(rt=rt, user_id=creator.id, kind=MailKind.organizing, petition_id=petition.id)
    bad = {
        "other_account": _forge(token, [co_organizer.id, "organizing", petition.id]),
        "other_kind": _forge(token, [creator.id, "news", petition.id]),
        "cut_short": token[:-6],
        "made_up": "eyJ1IjoxfQ.bm90LWEtc2lnbmF0dXJl",
        "too_long": token + "A" * 300,
    }[tamper]
    visitor = new_browser()
    for response in (visitor.get(f"/unsubscribe/{bad}"), visitor.post(f"/unsubscribe/{bad}", csrf=False)):
        assert response.status_code == 400
        assert "This unsubscribe link is not one we sent" in response.text
        assert "Traceback" not in response.text
    assert count_rows(db, "mail_opt_outs") == 0


def test_turned_off_mail_is_not_sent_and_each_kind_stops_only_itself(
    browser: Browser, db: Session, rt, organized
) -> None:
    petition, creator, co_organizer = organized
    other = factories.open_petition(db, rt, creator=creator, title="Publish the salary bands")
    sign_in_as(browser, db, creator)
    # Organizing mail off for the first petition only, from the account page.
    browser.post(f"/account/petitions/{petition.id}/mail", {"mail_news": "1", "mail_digest": "1"})
    from app.petitions import notify

    notify.tell_organizers(db=db, rt=rt, petition=petition, template="petition_closed", context={"reason": ""})
    notify.tell_organizers(db=db, rt=rt, petition=other, template="petition_closed", context={"reason": ""})
    db.commit()
    closed = mail_to(db, creator, "petition_closed")
    assert [petition.title in message.body_text for message in closed] == [False], "only the other petition's"
    assert len(mail_to(db, co_organizer, "petition_closed")) == 1, "nobody else's setting changes"


def test_the_account_page_lists_named_signatures_and_follows_never_anonymous_ones(
    new_browser, db: Session, rt, anonymous_client
) -> None:
    secret = open_anonymous(db, rt, title="Investigate the night-shift manager")
    named = factories.open_petition(db, rt, title="Publish the salary bands")
    followed = factories.open_petition(db, rt, title="Fix the canteen ventilation")
    member = factories.worker(db, name="Mo Member")
    person = sign_in_as(new_browser(), db, member)
    tokens, _ = wallet(person)
    assert submit(anonymous_client, secret.id, tokens[secret.id]).status_code == 202
    signatures.sign(db=db, rt=rt, petition_id=named.id, user=member, visibility="organizers", notify_updates=False)
    petitions.follow(db=db, rt=rt, petition=followed, user=member)
    db.commit()
    page = person.get("/account").text
    assert "Publish the salary bands" in page and "Signed, name shown to its organizers" in page
    assert "Fix the canteen ventilation" in page and "Following" in page
    assert "Investigate the night-shift manager" not in page and f"/petitions/{secret.id}" not in page
    assert 'href="/wallet"' in page and "signed anonymously are not listed" in page

    # Turning a named signature's news on asks for its updates; off stops them and unfollows.
    assert person.post(f"/account/petitions/{named.id}/mail", {"mail_news": "1"}).status_code == 303
    db.expire_all()
    assert db.scalar(select(Signature.notify_updates).where(Signature.petition_id == named.id)) is True
    person.post(f"/account/petitions/{followed.id}/mail", {})
    assert petitions.is_following(db=db, petition=followed, user=member) is False
    assert db.get(MailOptOut, (member.id, followed.id, "news")) is not None
    # Following again from the petition's page asks for its news again.
    person.post(f"/petitions/{followed.id}/follow")
    assert db.get(MailOptOut, (member.id, followed.id, "news")) is None
    # A petition the person has nothing to do with has no settings to change.
    assert person.post(f"/account/petitions/{secret.id}/mail", {"mail_news": "1"}).status_code == 404
    assert count_rows(db, "petition_follows") == 1


def test_an_unsubscribe_token_names_only_the_account_kind_and_petition(rt, db: Session, organized) -> None:
    petition, creator, _ = organized
    token = unsubscribe.token(rt=rt, user_id=creator.id, kind=MailKind.news, petition_id=petition.id)
    payload, _ = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert decoded == [creator.id, "news", petition.id]


def test_follows_deliveries_and_opt_outs_keep_no_finer_time_than_the_hour(
    browser: Browser, db: Session, rt, clock, organized, responder, sessions, new_browser
) -> None:
    from datetime import timedelta

    from app.models.petitions import Delivery, Follow

    petition, _creator, _ = organized
    clock.advance(timedelta(minutes=23, seconds=17, microseconds=123456))
    follower = factories.worker(db)
    sign_in_as(browser, db, follower).post(f"/petitions/{petition.id}/follow")
    sign_in_as(new_browser(), db, responder).post(f"/petitions/{petition.id}/respond", RESPONSE)
    delivery.deliver_notifications(sessions=sessions, rt=rt)
    db.expire_all()
    hour = rt.clock.now().replace(minute=0, second=0, microsecond=0)
    follows, deliveries = list(db.scalars(select(Follow.created_at))), list(db.scalars(select(Delivery.created_at)))
    assert follows and deliveries
    assert all(moment.replace(tzinfo=hour.tzinfo) == hour for moment in follows + deliveries), follows + deliveries
    browser.post(f"/account/petitions/{petition.id}/mail", {})
    assert [row.created_on for row in db.scalars(select(MailOptOut))] == [hour.date()]


def _unreadable_petitions(db: Session, rt) -> dict[str, Petition]:
    """A petition for each way of not being readable by everyone: hidden by moderators after it opened, a rejection
    whose reason is withheld, and a draft (a made-up opt-out for it, as an old link might leave)."""
    from app.moderation import service as moderation

    mod = factories.moderator(db)
    hidden = factories.open_petition(db, rt, title="Hidden: it names a colleague")
    moderation.hide(db=db, rt=rt, petition=hidden, moderator=mod, reason="Names a colleague.")
    withheld = factories.petition_in_moderation(db, rt, title="Withheld: the reason is not public")
    private_reason = next(reason for reason in moderation.rejection_reasons(db=db) if not reason.public)
    moderation.reject(db=db, rt=rt, petition=withheld, moderator=mod, code=private_reason.code, note=None)
    draft = factories.draft_petition(db, rt, title="Draft: nobody has read it")
    return {"hidden": hidden, "withheld": withheld, "draft": draft}


def test_the_account_page_neither_shows_nor_follows_a_petition_its_reader_may_not_read(
    new_browser, db: Session, rt
) -> None:
    """Review F10: a mail opt-out row (or a follow, or a named signature) listed the petition whatever its state, and
    ticking its news added a Follow to a hidden petition, past the petition page's rule."""
    from app.models.petitions import Follow

    member = factories.worker(db, name="Mo Member")
    unreadable = _unreadable_petitions(db, rt)
    for petition in unreadable.values():
        unsubscribe.turn_off(db=db, rt=rt, user=member, kind=MailKind.news, petition_id=petition.id)
    # Followed and signed by name while open, hidden since: gone from the list too.
    signed = factories.open_petition(db, rt, title="Signed, then hidden")
    signatures.sign(db=db, rt=rt, petition_id=signed.id, user=member, visibility="public", notify_updates=True)
    petitions.follow(db=db, rt=rt, petition=signed, user=member)
    from app.moderation import service as moderation

    moderation.hide(db=db, rt=rt, petition=signed, moderator=factories.moderator(db), reason="Names a colleague.")
    readable = factories.open_petition(db, rt, title="Fix the canteen ventilation")
    unsubscribe.turn_off(db=db, rt=rt, user=member, kind=MailKind.news, petition_id=readable.id)
    db.commit()

    person = sign_in_as(new_browser(), db, member)
    page = person.get("/account").text
    assert "Fix the canteen ventilation" in page
    for petition in [*unreadable.values(), signed]:
        assert petition.title not in page and f"petition-mail-{petition.id}" not in page, petition.state
        reply = person.post(f"/account/petitions/{petition.id}/mail", {"mail_news": "1"})
        assert reply.status_code == 404, (petition.state, reply.status_code)
        assert "Traceback" not in reply.text
    db.expire_all()
    assert db.scalars(select(Follow.petition_id).where(Follow.user_id == member.id)).all() == [signed.id]
    assert {row.petition_id for row in db.scalars(select(MailOptOut))} == {
        *(petition.id for petition in unreadable.values()),
        readable.id,
    }
    # A readable one is followed from here as from its page: the opt-out goes, a follow comes.
    assert person.post(f"/account/petitions/{readable.id}/mail", {"mail_news": "1"}).status_code == 303
    assert petitions.is_following(db=db, petition=readable, user=member)
    assert db.get(MailOptOut, (member.id, readable.id, "news")) is None


def test_the_account_page_goes_through_the_follow_rules_for_organizers_and_moderators(
    new_browser, db: Session, rt
) -> None:
    """Its organizers and moderators may read a hidden petition, so it is listed for them; but only a published
    petition is followed, from here as from its page."""

    unreadable = _unreadable_petitions(db, rt)
    hidden = unreadable["hidden"]
    creator = db.get_one(User, hidden.creator_id)
    mod = factories.moderator(db)
    for person in (creator, mod):
        unsubscribe.turn_off(db=db, rt=rt, user=person, kind=MailKind.news, petition_id=hidden.id)
    db.commit()
    organizer = sign_in_as(new_browser(), db, creator)
    assert hidden.title in organizer.get("/account").text
    assert (
        organizer.post(
            f"/account/petitions/{hidden.id}/mail", {"mail_news": "1", "mail_organizing": "1", "mail_digest": "1"}
        ).status_code
        == 303
    )
    assert db.get(MailOptOut, (creator.id, hidden.id, "news")) is None  # an organizer hears of it by role
    moderator = sign_in_as(new_browser(), db, mod)
    assert hidden.title in moderator.get("/account").text
    refused = moderator.post(f"/account/petitions/{hidden.id}/mail", {"mail_news": "1"})
    assert refused.status_code == 409 and "Only a published petition can be followed." in refused.text
    db.expire_all()
    assert count_rows(db, "petition_follows") == 0
    assert db.get(MailOptOut, (mod.id, hidden.id, "news")) is not None  # nothing half-written


def test_the_unsubscribe_pages_name_only_a_petition_everyone_may_read(new_browser, db: Session, rt) -> None:
    """Review F7: a link's holder saw the title of a petition hidden since the mail was sent. The link still works."""
    member = factories.worker(db)
    unreadable = _unreadable_petitions(db, rt)
    public = factories.closed_petition(db, rt, title="Publish the salary bands")
    db.commit()
    for petition in [*unreadable.values(), public]:
        path = unsubscribe.link(rt=rt, user_id=member.id, kind=MailKind.news, petition_id=petition.id).removeprefix(
            "http://testserver"
        )
        visitor = new_browser()
        asked, stopped = visitor.get(path), visitor.post(path, {"List-Unsubscribe": "One-Click"}, csrf=False)
        again = visitor.get(path)
        assert (asked.status_code, stopped.status_code, again.status_code) == (200, 200, 200)
        assert db.get(MailOptOut, (member.id, petition.id, "news")) is not None
        assert "already off" in again.text
        for page in (asked, stopped, again):
            if petition is public:
                assert "about “Publish the salary bands”" in page.text
            else:
                assert petition.title not in page.text and f"/petitions/{petition.id}" not in page.text, petition.state
                assert "about a petition that is no longer public" in page.text
    assert f'href="/petitions/{public.id}"' in stopped.text


def test_who_may_read_a_petition_is_the_same_in_sql_as_on_its_page(db: Session, rt) -> None:
    """The account page and the unsubscribe pages ask the database who may read a petition; the petition page asks
    petitions.service.get_readable. Every state, for a stranger, an organizer, a moderator and a signed-out reader."""
    from sqlalchemy.orm import selectinload

    from app.core.errors import NotFound
    from app.petitions import repository

    stranger, mod = factories.worker(db), factories.moderator(db)
    unreadable = _unreadable_petitions(db, rt)
    every = [
        *unreadable.values(),
        factories.petition_gathering_sponsors(db, rt),
        factories.petition_in_moderation(db, rt),
        factories.open_petition(db, rt),
        factories.closed_petition(db, rt),
    ]
    assert {petition.state for petition in every} >= {
        "draft",
        "gathering_sponsors",
        "in_moderation",
        "open",
        "closed",
        "hidden",
        "rejected",
    }
    db.commit()
    with_roles = select(User).options(selectinload(User.roles))
    for reader in (
        None,
        *db.scalars(with_roles.where(User.id.in_([stranger.id, mod.id, unreadable["hidden"].creator_id]))),
    ):
        in_sql = set(
            db.scalars(
                select(Petition.id).where(
                    repository.readable_to_everyone() if reader is None else repository.readable_by(reader)
                )
            )
        )
        on_page = set()
        for petition in every:
            try:
                petitions.get_readable(db=db, rt=rt, petition_id=petition.id, user=reader)
            except NotFound:
                continue
            on_page.add(petition.id)
        assert in_sql & {petition.id for petition in every} == on_page, reader
    assert repository.is_readable_to_everyone(db=db, petition_id=every[-1].id)
    assert not repository.is_readable_to_everyone(db=db, petition_id=unreadable["withheld"].id)


def test_mail_carries_the_organizations_name_where_its_admins_set_one(
    db: Session, rt, organized, responder, sessions, smtp, database_url: str, new_browser
) -> None:
    """Issue #22: the name the pages' header shows (app/organization/branding.py) names the site in subjects and
    signs every mail, in place of the software's and the deployment's names."""
    from app.models.organization import OrganizationBranding

    inbox, port = smtp
    petition, creator, _ = organized
    db.add(OrganizationBranding(id=1, name="Acme Workers' Union"))
    db.flush()
    sign_in_as(new_browser(), db, responder).post(f"/petitions/{petition.id}/respond", RESPONSE)
    assert new_browser().post("/signin/link", {"email": creator.email}).status_code == 303
    delivery.deliver_notifications(sessions=sessions, rt=rt)
    deliver_due(
        sessions=sessions, settings=make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port), clock=rt.clock
    )
    received = {
        email["Subject"]: email.get_payload(decode=True).decode().replace("\r\n", "\n")
        for to, email in inbox.messages
        if to == [creator.email]
    }
    assert "Sign in to Acme Workers' Union" in received, list(received)
    assert any(subject.startswith("Leadership responded") for subject in received), list(received)
    for subject, body in received.items():
        if not subject.startswith(("Sign in", "Leadership responded")):
            continue  # queued before the name was set (the fixture's petition went to the moderators)
        assert "\n--\nAcme Workers' Union\n" in body, body
        assert "Undersigned" not in subject + body and "Example Organization" not in body, (subject, body)
