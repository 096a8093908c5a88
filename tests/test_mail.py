"""The outbox: mail is written with the request's data, delivered over real SMTP, retried, never doubled."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from app.core.clock import FrozenClock
from app.mail import service as mail
from app.mail.sender import claim_next, deliver_due
from app.models.mail import OutboxStatus
from tests.conftest import Browser, code_from, make_settings, outbox


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp_server(smtp_port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield inbox
    controller.stop()


def queue_one(db: Session, app, clock: FrozenClock, to: str = "ana@example.org") -> None:
    mail.queue(
        db=db,
        templates=app.state.templates.env,
        to_address=to,
        template="account_exists",
        now=clock.now(),
        context={"user": {"display_name": "Ana"}, "base_url": "http://testserver"},
    )
    db.commit()


def test_sign_up_mail_arrives_over_smtp(
    browser: Browser,
    db,
    app,
    sessions,
    clock,
    smtp_server: Inbox,
    smtp_port: int,
    database_url: str,
) -> None:
    browser.post("/signup", {"email": "nia@example.org", "display_name": "Nia", "password": "long enough password"})
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=smtp_port)
    assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 1
    [(recipients, email)] = smtp_server.messages
    assert recipients == ["nia@example.org"]
    assert email["Subject"].startswith("Your code for Undersigned")
    assert email["Message-ID"]
    [row] = outbox(db)
    assert row.status == OutboxStatus.sent and row.sent_at == clock.now()
    assert code_from(row) in email.get_payload(decode=True).decode()


def test_outage_is_retried_at_the_next_hour_and_nothing_is_sent_twice(
    db,
    app,
    sessions,
    clock,
    smtp_port: int,
    database_url: str,
) -> None:
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_timeout_seconds=2)
    queue_one(db, app, clock)
    assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0, "no server yet"
    [row] = outbox(db)
    assert row.status == OutboxStatus.pending and row.attempts == 1
    assert row.next_attempt_at == clock.now() + timedelta(hours=1)  # the clock stands at 09:00
    assert row.last_error == "ConnectionRefusedError"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        clock.advance(timedelta(minutes=59))
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0, "not due before the next hour"
        clock.advance(timedelta(minutes=1))
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 1
        clock.advance(timedelta(hours=2))
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    [row] = outbox(db)
    assert row.status == OutboxStatus.sent and row.attempts == 2


class RefusingInbox(Inbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such mailbox"


def test_a_message_the_mail_server_keeps_refusing_is_marked_failed(
    db,
    app,
    sessions,
    clock,
    smtp_port: int,
    database_url: str,
) -> None:
    """Only a refusal of the message itself gives up on it; a mail server that is down never does
    (tests/test_mail_outage.py)."""
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=smtp_port, outbox_max_attempts=3)
    queue_one(db, app, clock)
    controller = Controller(RefusingInbox(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        for _ in range(3):
            deliver_due(sessions=sessions, settings=settings, clock=clock)
            clock.advance(timedelta(hours=1))
    finally:
        controller.stop()
    [row] = outbox(db)
    assert row.status == OutboxStatus.failed and row.attempts == 3
    assert row.last_error == "SMTPRecipientsRefused"


def test_without_smtp_mail_stays_in_the_development_mailbox(
    browser: Browser,
    db,
    app,
    sessions,
    clock,
    settings,
) -> None:
    browser.post("/signup", {"email": "nia@example.org", "display_name": "Nia", "password": "long enough password"})
    assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 1
    [row] = outbox(db)
    page = browser.get("/dev/mailbox")
    assert "nia@example.org" in page.text and row.subject in page.text
    message = browser.get(f"/dev/mailbox/{row.id}")
    assert code_from(row) in message.text
    assert browser.get("/dev/mailbox/999999").status_code == 404


def test_a_refused_request_queues_no_mail(browser: Browser, db) -> None:
    browser.post("/signup", {"email": "nia@example.org", "display_name": "Nia", "password": "short"})
    assert outbox(db) == []


def test_the_mailbox_page_is_gone_once_real_mail_goes_out(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app(make_settings(database_url, smtp_host="127.0.0.1"))
    with TestClient(app) as client:
        assert client.get("/dev/mailbox").status_code == 404


def _finer_than_the_hour(db: Session) -> list[str]:
    """Every time an outbox row holds that says more than its hour (the rows name their recipient)."""
    db.expire_all()
    return [
        f"outbox {row.id} {column}={value}"
        for row in outbox(db)
        for column in ("created_at", "next_attempt_at", "sent_at")
        if (value := getattr(row, column)) is not None and (value.minute, value.second, value.microsecond) != (0, 0, 0)
    ]


def test_an_outbox_row_keeps_only_hours_when_queued_claimed_retried_and_sent(
    db,
    app,
    sessions,
    clock,
    smtp_port: int,
    database_url: str,
) -> None:
    """The attacker with the database reads a mail's row, which names its recipient, as a clock: a queueing, a
    claim, a retry or a sending time to the second dates the transactions around it (PostgreSQL's xmin, SQLite's
    rowid), and with them any anonymous row written next to it. The linkage day found exactly that: a poll's
    opening mail sent at 14:41:05.219 and a digest at 16:45:52.877 dated a cookie-less exchange between them.
    Every version of the row (a dead one is read too) keeps whole hours."""
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_timeout_seconds=2)
    clock.advance(timedelta(minutes=17, seconds=23, microseconds=456))
    queue_one(db, app, clock)
    assert _finer_than_the_hour(db) == [], "queued"

    assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0, "the mail server is down"
    assert _finer_than_the_hour(db) == [], "a failed attempt and its retry time"
    [row] = outbox(db)
    assert row.next_attempt_at > clock.now(), "the retry waits"

    clock.advance(row.next_attempt_at - clock.now() + timedelta(minutes=3, seconds=7))
    assert claim_next(sessions=sessions, settings=settings, clock=clock) is not None  # a worker dies mid-send
    assert _finer_than_the_hour(db) == [], "a claim's lease"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0, "claimed: not sent twice"
        [row] = outbox(db)
        clock.advance(row.next_attempt_at - clock.now() + timedelta(seconds=41))
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 1, "sent once the lease ran out"
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    assert _finer_than_the_hour(db) == [], "sent"
