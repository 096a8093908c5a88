"""A poll's surfaces beyond answering (issue #25): its result as a PDF, the mail that tells its audience it opened,
the page where its author edits it, and the limits on its cookie-less routes."""

from __future__ import annotations

import secrets
import subprocess
import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, selectinload

from app import jobs
from app.ballots import limits, opening_mail
from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.ballots.answers import ballot_queue
from app.core import b64url
from app.core.clock import to_the_hour
from app.core.database import build_engine, build_sessionmaker
from app.core.errors import Forbidden
from app.models.accounts import Role, User
from app.models.ballots import BallotAnswer, BallotAudience, BallotExchange, BallotKind
from app.models.mail import OutboxMessage
from app.models.petitions import Delivery, Petition, PetitionOrganizer
from app.models.signatures import GroupKind
from app.moderation import service as moderation
from app.organization import eligibility
from app.signatures import service as signatures
from tests import factories
from tests.ballot_helpers import credential, petition_ballot, pulse_ballot
from tests.conftest import Browser, counting_statements, make_user, outbox, sign_in_as
from tests.server_process import runtime, scratch_database
from tests.test_anonymous import anonymous_client, submit, wallet  # noqa: F401 (a fixture)
from tests.test_ballot_audiences import group, groups_ballot, members_of
from tests.test_ballot_credentials import Wallet, bare, exchange  # noqa: F401 (a fixture)
from tests.test_ballot_pages import answer, close, pulse


@pytest.fixture
def responder(db):
    return factories.worker(db, name="Riley Responder", roles=(Role.responder,))


def pdf_text(body: bytes, tmp_path) -> str:
    """The PDF's text as pdftotext reads it (poppler), words joined by single spaces."""
    path = tmp_path / "result.pdf"
    path.write_bytes(body)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True)
    return " ".join(out.stdout.split())


# -- the PDF ----------------------------------------------------------------------------------------------------


def test_the_pdf_suppresses_as_the_csv_and_json_do(browser: Browser, db, rt, clock, responder, tmp_path) -> None:
    k = rt.settings.min_group_size
    ballot = pulse(db, rt, responder, options=["Pay rise", "Shorter hours", "Remote work"])
    answer(db, ballot, *([[0]] * (k - 1)))
    sign_in_as(browser, db, factories.worker(db))
    page = browser.get(f"/polls/{ballot.id}").text
    assert f'href="/polls/{ballot.id}/results.pdf"' in page

    def pdf() -> str:
        got = browser.get(f"/polls/{ballot.id}/results.pdf")
        assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == f'attachment; filename="poll-{ballot.id}-results.pdf"'
        assert got.headers["cache-control"] == "no-store"
        return pdf_text(got.content, tmp_path)

    # The page says how many answers are counted while it keeps the figures (it said 0 whatever the count).
    assert f"{k - 1} answers are counted so far" in page
    text = pdf()  # open: kept until the close
    assert "Which should leadership fix first?" in text and "Results are shown once the poll closes" in text
    assert f"Answers counted {k - 1}" in text and "Shorter hours" in text  # the counter and options, as the page
    assert "What " not in text and "%" not in text and "Share" not in text

    close(clock, rt, ballot)
    text = pdf()  # closed, one answer short of k
    assert "Not enough answers yet" in text and "%" not in text and "Shorter hours" in text

    answer(db, ballot, [1])  # the k-th, written by the last batch
    text = pdf()
    assert f"What {k} people answered" in text
    assert f"Pay rise (most) {k - 1} {round(100 * (k - 1) / k)}%" in text
    assert f"Shorter hours 1 {round(100 / k)}%" in text and "Remote work 0 0%" in text
    assert f"undersigned verify {rt.settings.base_url.rstrip('/')}/polls/{ballot.id}" in text


def test_a_ranked_pdf_prints_every_round(browser: Browser, db, rt, clock, responder, tmp_path) -> None:
    ballot = pulse(db, rt, responder, kind=BallotKind.ranked, max_choices=3)
    answer(db, ballot, [0, 1], [0, 2], [1, 0], [1, 0], [2, 1], [2, 0])
    close(clock, rt, ballot)
    text = pdf_text(browser.get(f"/polls/{ballot.id}/results.pdf").content, tmp_path)
    assert "wins, by instant runoff over 6 ranked answers" in text
    assert "Round Option Answers Note" in text and "dropped" in text and "Exhausted" in text


def test_the_pdf_is_for_whoever_may_read_the_poll(browser: Browser, new_browser, db, rt) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = petition_ballot(db, rt, petition, organizer, question="Strike?", options=["Yes", "No"])
    reader = sign_in_as(new_browser(), db, factories.worker(db))
    assert reader.get(f"/polls/{ballot.id}/results.pdf").status_code == 200
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert reader.get(f"/polls/{ballot.id}/results.pdf").status_code == 404
    assert reader.get(f"/polls/{ballot.id + 1000}/results.pdf").status_code == 404
    assert reader.get(f"/polls/{ballot.id}/results.xlsx").status_code == 404


# -- the opening mail ---------------------------------------------------------------------------------------------


def opening_mail_to(db: Session, user: User) -> list[OutboxMessage]:
    return [message for message in outbox(db, user.notification_address) if message.template == "ballot_opened"]


def opening_mails(db: Session) -> list[OutboxMessage]:
    db.expire_all()
    return [message for message in db.scalars(select(OutboxMessage)) if message.template == "ballot_opened"]


def test_a_poll_put_to_every_member_mails_each_verified_member_once(
    db: Session, rt, clock, sessions, responder, new_browser
) -> None:
    members = [factories.worker(db) for _ in range(3)]
    unverified = make_user(db, email="new@example.org", name="Not Yet", verified=False)
    ballot = pulse(db, rt, responder)
    assert opening_mail.mail_openings(sessions=sessions, rt=rt, batch=2) == 4  # the members and the author
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 0  # the next round: everyone was told
    jobs.run_once(sessions=sessions, rt=rt)
    for person in [*members, responder]:
        [message] = opening_mail_to(db, person)
        assert message.subject == "A poll is open: Which should leadership fix first?"
        assert f"http://testserver/polls/{ballot.id}" in message.body_text
        assert "Leadership asks every member:" in message.body_text
        # Turned off for the whole account, by a link naming no petition (RFC 8058, as every mail a person can stop).
        assert message.unsubscribe_url and message.unsubscribe_url in message.body_text
    assert opening_mail_to(db, unverified) == []
    # Tied to accounts: the hour of the round, nothing finer, in the outbox and in the record of who was told.
    hour = to_the_hour(rt.clock.now())
    assert {message.created_at for message in opening_mails(db)} == {hour}
    assert set(db.scalars(select(Delivery.created_at).where(Delivery.event_key == f"ballot_opened:{ballot.id}"))) == {
        hour
    }

    # One click on the link stops the next poll's mail for that account alone.
    stopper = members[0]
    link = opening_mail_to(db, stopper)[0].unsubscribe_url
    assert link is not None
    done = new_browser().client.post(
        link.removeprefix("http://testserver"),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "mail when a poll put to you opens" in done.text
    author = db.scalars(select(User).where(User.id == responder.id).options(selectinload(User.roles))).one()
    pulse(db, rt, author, question="And on Fridays?")
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 3
    assert len(opening_mail_to(db, stopper)) == 1 and len(opening_mail_to(db, members[1])) == 2


def test_a_batch_checks_the_organizations_rules_for_all_its_accounts_at_once(
    db: Session, rt, connection, sessions, responder
) -> None:
    listed = [factories.worker(db) for _ in range(4)]
    off_the_list = [factories.worker(db) for _ in range(2)]
    other_domain = make_user(db, email="someone@elsewhere.net", name="Other Domain")
    eligibility.replace_list(db=db, rt=rt, addresses={person.email for person in [*listed, responder, other_domain]})
    ballot = pulse(db, rt, responder)
    eligibility.require_eligible(db=db, rt=rt, user=responder)  # whether a list was imported is remembered a while
    with counting_statements(connection) as statements, sessions.begin() as round_db:
        assert opening_mail._batch(round_db, rt, ballot.id, opening_mail.BATCH) == len(listed) + 1
    # The poll, where the last batch ended, the accounts, those who turned poll mail off, the poll's groups, the
    # eligibility list and the site's name: seven reads however many accounts the batch holds (one a mail before).
    reads = [statement for statement in statements if statement.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 7, reads
    assert sum("eligible_addresses" in statement for statement in reads) == 1
    for person in [*listed, responder]:
        assert len(opening_mail_to(db, person)) == 1
    for person in [*off_the_list, other_domain]:
        assert opening_mail_to(db, person) == []


def test_the_batch_check_lets_in_whom_the_one_account_check_lets_in(db: Session, rt) -> None:
    listed, off_the_list = factories.worker(db), factories.worker(db)
    other_domain = make_user(db, email="someone@elsewhere.net", name="Other Domain")
    unverified = make_user(db, email="new@example.org", name="Not Yet", verified=False)
    everyone = [listed, off_the_list, other_domain, unverified]

    def one_by_one() -> set[int]:
        let_in = set()
        for person in everyone:
            try:
                eligibility.require_eligible(db=db, rt=rt, user=person)
            except Forbidden:
                continue
            let_in.add(person.id)
        return let_in

    assert eligibility.eligible_among(db=db, rt=rt, users=everyone) == one_by_one() == {listed.id, off_the_list.id}
    eligibility.replace_list(db=db, rt=rt, addresses={listed.email, other_domain.email, unverified.email})
    assert eligibility.eligible_among(db=db, rt=rt, users=everyone) == one_by_one() == {listed.id}


def test_a_scheduled_poll_is_mailed_by_the_round_after_it_opens(db: Session, rt, clock, sessions, responder) -> None:
    ballot = pulse(db, rt, responder, opens_at=rt.clock.now() + timedelta(hours=3))
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 0
    clock.advance(ballot.opens_at - rt.clock.now())
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 1
    close(clock, rt, ballot)
    pulse(db, rt, responder, question="Closed before anyone was told?")
    clock.advance(timedelta(days=3))  # closed before a round ran: nobody is told of a poll they cannot answer
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 0


def test_a_signers_poll_mails_named_signers_and_never_an_anonymous_one(
    db: Session, rt, sessions, new_browser, anonymous_client
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, allow_anonymous=True)
    public, hidden_name, anonymous_signer, bystander = (factories.worker(db) for _ in range(4))
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=public, visibility="public", notify_updates=False)
    signatures.sign(
        db=db, rt=rt, petition_id=petition.id, user=hidden_name, visibility="organizers", notify_updates=False
    )
    db.commit()
    tokens, _ = wallet(sign_in_as(new_browser(), db, anonymous_signer))
    assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202
    db.expire_all()
    assert db.get_one(Petition, petition.id).signature_count == 3
    ballot = petition_ballot(db, rt, petition, organizer, question="Strike on Monday?", options=["Yes", "No"])

    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 2
    for person in (public, hidden_name):
        [message] = opening_mail_to(db, person)
        assert "ask the petition's signers" in message.body_text and f"/polls/{ballot.id}" in message.body_text
    # The anonymous signer's account held a token and signed with it: nothing ties the two, and no mail does.
    for person in (anonymous_signer, bystander, organizer):
        assert opening_mail_to(db, person) == []
    recorded = set(db.scalars(select(Delivery.user_id).where(Delivery.event_key == f"ballot_opened:{ballot.id}")))
    assert recorded == {public.id, hidden_name.id}


def test_a_hidden_petitions_poll_waits_until_it_is_shown_again(db: Session, rt, sessions) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    signer = factories.worker(db)
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=signer, visibility="public", notify_updates=False)
    petition_ballot(db, rt, petition, organizer, audience=BallotAudience.members)
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 0


def test_a_poll_put_to_departments_mails_only_the_members_who_gave_them(db: Session, rt, sessions) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    engineers = members_of(db, engineering, rt.settings.min_group_size)
    in_lyon = members_of(db, lyon, 1)
    elsewhere = [factories.worker(db)]
    ballot = groups_ballot(db, rt, [engineering])
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == len(engineers)
    for person in engineers:
        [message] = opening_mail_to(db, person)
        assert "asks the members of Engineering:" in message.body_text
        assert "a department or location you gave on your account page" in message.body_text
    for person in [*in_lyon, *elsewhere]:
        assert opening_mail_to(db, person) == []
    assert opening_mail.mail_openings(sessions=sessions, rt=rt) == 0
    assert ballot.audience is BallotAudience.groups


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_rounds_at_once_mail_each_member_once(kind: str, tmp_path) -> None:
    """Two workers' rounds in two processes' transactions: the second starts while the first has queued its batch
    and not committed; each member still gets one mail, and later rounds add none."""
    with scratch_database(kind, tmp_path, "opening_mail") as url:
        rt = runtime(url)
        engines = [build_engine(url) for _ in range(3)]
        first, second = (build_sessionmaker(engine, writes=True) for engine in engines[:2])
        try:
            with first() as db:  # the factories commit as they go
                members = [factories.worker(db) for _ in range(4)]
                author = factories.worker(db, roles=(Role.responder,))
                ballot = ballots.create(
                    db,
                    rt,
                    actor=author,
                    petition=None,
                    kind=BallotKind.single,
                    question="Should the office open at eight?",
                    options=["Yes", "No"],
                    max_choices=None,
                    audience=BallotAudience.members,
                    opens_at=None,
                    closes_at=rt.clock.now() + timedelta(days=2),
                )
                db.commit()
                addresses = sorted(person.notification_address for person in [*members, author])
                ballot_id = ballot.id
            rounds: list[int] = []
            other = threading.Thread(target=lambda: rounds.append(opening_mail.mail_openings(sessions=second, rt=rt)))
            with first.begin() as db:
                assert opening_mail._batch(db, rt, ballot_id, opening_mail.BATCH) == 5
                other.start()
                if kind == "postgresql":
                    # The other round has reached the same rows and waits for this transaction to end.
                    for _ in range(3000):
                        if _waiting_on_a_lock(engines[2]):
                            break
                        threading.Event().wait(0.01)
                    else:
                        pytest.fail("the second round never reached the first one's rows")
            other.join(60)
            assert rounds == [0]
            assert opening_mail.mail_openings(sessions=second, rt=rt) == 0
            assert opening_mail.mail_openings(sessions=first, rt=rt) == 0
            with first() as db:
                sent = sorted(
                    message.to_address
                    for message in db.scalars(select(OutboxMessage))
                    if message.template == "ballot_opened"
                )
            assert sent == addresses
        finally:
            for engine in engines:
                engine.dispose()


# -- the edit page and the API -------------------------------------------------------------------------------------


def hour_from_now(rt, hours: int) -> str:
    return (to_the_hour(rt.clock.now()) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def scheduled_form(rt, **changes: str) -> dict[str, str]:
    form = {
        "question": "Which should leadership fix first?",
        "options": "Pay\nHours\nRemote work",
        "opens_at": hour_from_now(rt, 5),
        "closes_at": hour_from_now(rt, 48),
        "min_answers": str(rt.settings.min_group_size),
        "note": "",
    }
    form.update(changes)
    return form


def snapshot(db: Session, ballot) -> tuple[object, ...]:
    db.expire_all()
    return (
        ballot.question,
        tuple(ballots.labels(db=db, ballot=ballot)),
        ballot.opens_at,
        ballot.closes_at,
        ballot.min_answers,
        ballot.results_live,
        ballot.note,
        ballot_log.ballot_entries(db, ballot.id),
    )


def test_the_author_changes_a_poll_before_it_opens(browser: Browser, db: Session, rt, responder) -> None:
    ballot = pulse(db, rt, responder, opens_at=rt.clock.now() + timedelta(hours=5))
    sign_in_as(browser, db, responder)
    assert f'href="/polls/{ballot.id}/edit"' in browser.get(f"/polls/{ballot.id}").text
    page = browser.get(f"/polls/{ballot.id}/edit")
    assert page.status_code == 200 and 'name="question"' in page.text and "Remote work" in page.text
    entries = ballot_log.ballot_entries(db, ballot.id)
    sent = browser.post(
        f"/polls/{ballot.id}/edit",
        scheduled_form(rt, question="What first?", options="Pay\nParking", note="Results go to the board."),
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/polls/{ballot.id}"
    db.expire_all()
    assert (ballot.question, ballots.labels(db=db, ballot=ballot), ballot.note) == (
        "What first?",
        ["Pay", "Parking"],
        "Results go to the board.",
    )
    assert ballot_log.ballot_entries(db, ballot.id) == entries + 1  # the log commits the new texts


def test_once_open_only_the_note_and_the_closing_time_change(browser: Browser, db: Session, rt, responder) -> None:
    ballot = pulse(db, rt, responder)
    sign_in_as(browser, db, responder)
    page = browser.get(f"/polls/{ballot.id}/edit").text
    assert 'name="question"' not in page and 'name="options"' not in page and 'name="closes_at"' in page
    assert "its question, options and rules stay as they are" in page
    later = hour_from_now(rt, 72)
    sent = browser.post(f"/polls/{ballot.id}/edit", {"closes_at": later, "note": "One more day."})
    assert sent.status_code == 303
    db.expire_all()
    assert ballot.note == "One more day." and ballot.closes_at.strftime("%Y-%m-%dT%H:%M") == later
    # What the page does not offer is not read: a forged question changes nothing.
    browser.post(f"/polls/{ballot.id}/edit", {"closes_at": later, "note": "", "question": "Swapped?"})
    db.expire_all()
    assert ballot.question == "Which should leadership fix first?" and ballot.note is None


@pytest.mark.parametrize(
    ("changes", "messages"),
    [
        ({"closes_at": "next week"}, {"closes_at": "Enter a date and time like 2027-03-31 17:00."}),
        ({"closes_at": "2020-01-01T09:00"}, {"closes_at": "The closing time has passed"}),
        ({"closes_at": ""}, {"closes_at": "This is required."}),
        ({"options": "Pay\npay"}, {"options": "Two options say the same thing"}),
        ({"question": " "}, {"question": "Write the question."}),
        ({"min_answers": "1"}, {"min_answers": "fewer would let a result be traced"}),
        ({"min_answers": "many"}, {"min_answers": "Enter a whole number, like 12."}),
        ({"note": "x" * 2001}, {"note": "Keep the note under 2000 characters."}),
        # Every problem in one round: what the form could not read, and what the rules refuse.
        (
            {"closes_at": "soon", "options": "Pay", "question": ""},
            {
                "closes_at": "Enter a date and time like",
                "options": "Give at least 2 options.",
                "question": "Write the question.",
            },
        ),
    ],
)
def test_bad_changes_are_refused_in_plain_words_and_nothing_changes(
    browser: Browser, db: Session, rt, responder, changes: dict[str, str], messages: dict[str, str]
) -> None:
    ballot = pulse(db, rt, responder, opens_at=rt.clock.now() + timedelta(hours=5))
    before = snapshot(db, ballot)
    sign_in_as(browser, db, responder)
    refused = browser.post(f"/polls/{ballot.id}/edit", scheduled_form(rt, **changes))
    assert refused.status_code == 422
    for field, message in messages.items():
        assert message in refused.text.replace("&#39;", "'")
        assert f'href="#{field}"' in refused.text
    assert "Input should" not in refused.text and "validation error" not in refused.text
    assert snapshot(db, ballot) == before


def test_the_api_takes_the_same_changes_with_the_same_words(browser: Browser, db: Session, rt, responder) -> None:
    ballot = pulse(db, rt, responder)
    sign_in_as(browser, db, responder)
    path = f"/api/v1/ballots/{ballot.id}"
    done = browser.api("PATCH", path, {"note": "Thanks!"})
    assert done.status_code == 200 and done.json()["note"] == "Thanks!"
    refused = browser.api("PATCH", path, {"question": "Swapped?", "options": ["No", "Yes", "Later"]})
    assert refused.status_code == 409
    assert refused.json()["error"]["fields"] == {
        "question": "Fixed once the poll opens.",
        "options": "Fixed once the poll opens.",
    }
    past = browser.api("PATCH", path, {"closes_at": "2020-01-01T09:00:00+00:00"})
    assert past.status_code == 422
    assert past.json()["error"]["fields"]["closes_at"].startswith("The closing time has passed")
    assert browser.api("PATCH", path, {"closes_at": "tomorrow"}).status_code == 422
    assert browser.api("PATCH", path, {"note": None}).json()["note"] is None
    scheduled = pulse(db, rt, responder, question="Later?", opens_at=rt.clock.now() + timedelta(hours=5))
    twice = browser.api("PATCH", f"/api/v1/ballots/{scheduled.id}", {"options": ["Pay", "pay"]})
    assert twice.status_code == 422 and "Two options say the same thing" in twice.json()["error"]["fields"]["options"]


def test_only_those_who_manage_a_poll_may_change_it(
    browser: Browser, new_browser, db: Session, rt, clock, responder
) -> None:
    ballot = pulse(db, rt, responder)
    before = snapshot(db, ballot)
    later = hour_from_now(rt, 72)
    for stranger in (factories.worker(db), factories.worker(db, roles=(Role.responder,))):
        other = sign_in_as(new_browser(), db, stranger)
        assert f"/polls/{ballot.id}/edit" not in other.get(f"/polls/{ballot.id}").text
        assert other.get(f"/polls/{ballot.id}/edit").status_code == 403
        assert other.post(f"/polls/{ballot.id}/edit", {"closes_at": later, "note": "Mine now"}).status_code == 403
        assert other.api("PATCH", f"/api/v1/ballots/{ballot.id}", {"note": "Mine now"}).status_code == 403
    signed_out = new_browser()
    assert signed_out.get(f"/polls/{ballot.id}/edit").status_code in (303, 401)
    assert snapshot(db, ballot) == before
    # An admin may change any pulse poll; the co-organizers of a petition its polls.
    admin = sign_in_as(new_browser(), db, factories.worker(db, roles=(Role.admin,)))
    assert admin.post(f"/polls/{ballot.id}/edit", {"closes_at": later, "note": "Moved."}).status_code == 303
    organizer, co_organizer = factories.worker(db), factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    db.add(
        PetitionOrganizer(petition_id=petition.id, user_id=co_organizer.id, is_creator=False, added_at=rt.clock.now())
    )
    db.commit()
    theirs = petition_ballot(db, rt, petition, organizer)
    co = sign_in_as(new_browser(), db, co_organizer)
    assert co.api("PATCH", f"/api/v1/ballots/{theirs.id}", {"note": "From both of us."}).status_code == 200
    # Closed: nothing changes any more, in words.
    db.refresh(ballot)
    close(clock, rt, ballot)
    sign_in_as(browser, db, responder)
    assert browser.get(f"/polls/{ballot.id}/edit").status_code == 409
    late = browser.api("PATCH", f"/api/v1/ballots/{ballot.id}", {"note": "Too late"})
    assert late.status_code == 409 and "closed" in late.json()["error"]["message"]


# -- limits on the cookie-less routes -------------------------------------------------------------------------------


def answer_row_count(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(BallotAnswer)) or 0


def send_answer(client, ballot, pair: tuple[bytes, bytes], choice: list[int]):
    client.cookies.clear()
    message, signature = pair
    return client.post(
        f"/api/v1/ballots/{ballot.id}/answers",
        json={"message": b64url.encode(message), "signature": b64url.encode(signature), "choice": choice},
    )


def test_one_credential_answers_at_most_so_often_an_hour_and_the_next_is_refused_with_nothing_written(
    db: Session, rt, clock, anonymous_client, app
) -> None:
    ballot = pulse_ballot(db, rt)
    mine, other = credential(db, rt, ballot), credential(db, rt, ballot)
    db.commit()
    for turn in range(limits.ANSWERS_PER_HOUR):
        assert send_answer(anonymous_client, ballot, mine, [turn % 2]).status_code == 202
    written = answer_row_count(db)
    refused = send_answer(anonymous_client, ballot, mine, [2])
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith("This credential has answered this poll many times")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert answer_row_count(db) == written and ballot_queue(rt).take() == []
    # Per credential: another person's is untouched; and the next hour the first may answer again.
    assert send_answer(anonymous_client, ballot, other, [1]).status_code == 202
    clock.advance(timedelta(hours=1))
    assert send_answer(anonymous_client, ballot, mine, [2]).status_code == 202
    # Nothing of it in the account limiter's storage (memory here, Redis in production), where a key's lifetime
    # would date a credential's first answer; in this process only a count per credential for this hour.
    stored = rt.limiter._limiter.storage
    assert not [key for key in getattr(stored, "storage", {}) if "ballot" in key]
    kept = limits.counts(rt)
    assert set(vars(kept)) == {"_hour", "_counts", "_lock"} and isinstance(kept._hour, int)
    assert all(type(count) is int for count in kept._counts.values())
    assert {action for action, _ in kept._counts} <= {limits.ANSWER, limits.EXCHANGE}


def test_forged_credentials_are_not_counted(db: Session, rt, anonymous_client) -> None:
    ballot = pulse_ballot(db, rt)
    before = len(limits.counts(rt))  # the process's parts outlive one test
    for _ in range(3):
        forged = (secrets.token_bytes(32), secrets.token_bytes(128))
        assert send_answer(anonymous_client, ballot, forged, [0]).status_code == 400
    assert len(limits.counts(rt)) == before


def test_one_signer_credential_asks_for_the_exchange_at_most_so_often_an_hour(
    new_browser, db: Session, rt, clock, bare
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer, title="Fix the heating")
    ballot = petition_ballot(db, rt, petition, organizer)
    browser = sign_in_as(new_browser(), db, factories.worker(db))
    assert (
        browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public"}).status_code == 201
    )
    wallet = Wallet(browser)
    assert wallet.collect().status_code == 200
    first = exchange(bare, wallet, ballot)
    assert first.status_code == 200
    for _ in range(limits.EXCHANGES_PER_HOUR - 1):  # a wallet that lost the reply asks again: the same reply
        assert exchange(bare, wallet, ballot).json() == first.json()
    rows = db.scalar(select(func.count()).select_from(BallotExchange))
    refused = exchange(bare, wallet, ballot)
    assert (
        refused.status_code == 429
        and "asked for this poll's credential many times" in refused.json()["error"]["message"]
    )
    assert db.scalar(select(func.count()).select_from(BallotExchange)) == rows == 1
    clock.advance(timedelta(hours=1))
    assert exchange(bare, wallet, ballot).json() == first.json()


def test_the_account_page_turns_poll_mail_off_and_back_on(
    browser: Browser, db: Session, rt, sessions, responder
) -> None:
    member = factories.worker(db)
    sign_in_as(browser, db, member)
    page = browser.get("/account").text
    assert 'action="/account/poll-mail"' in page and 'id="polls" name="polls" type="checkbox" value="1" checked' in page
    assert browser.post("/account/poll-mail", {}).status_code == 303
    assert 'id="polls" name="polls" type="checkbox" value="1" aria' in browser.get("/account").text
    pulse(db, rt, responder)
    opening_mail.mail_openings(sessions=sessions, rt=rt)
    assert opening_mail_to(db, member) == []
    assert browser.post("/account/poll-mail", {"polls": "1"}).status_code == 303
    author = db.scalars(select(User).where(User.id == responder.id).options(selectinload(User.roles))).one()
    pulse(db, rt, author, question="And on Fridays?")
    opening_mail.mail_openings(sessions=sessions, rt=rt)
    assert len(opening_mail_to(db, member)) == 1
