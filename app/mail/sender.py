"""Delivering the outbox: SMTP in deployments, the development mailbox otherwise; a failed attempt is retried at
the next whole hour.

Delivery is at least once. Each message is claimed in a transaction of its own, sent with no transaction open,
then marked sent in another: a worker that dies (or loses the database) after the mail server took a message
and before marking it sent sends it again once its claim runs out, with the same Message-ID, by which receiving
servers can drop the copy. That window is the only way a message goes out twice; no crash loses one.

Every time a row keeps is a whole hour: its queueing, its claim's end, its next attempt and its sending. A row
names its recipient, and a moment to the second on it dated the transactions around it (PostgreSQL's xmin,
SQLite's rowid order), and so any anonymous row written between two mails: the linkage day's attacker placed a
cookie-less poll credential exchange between a poll's opening mail sent at 14:41:05 and a digest queued at
16:45:52, and among the few accounts active then. The cost: a failed attempt waits for the next hour (a down
mail server is asked once an hour), and a message claimed by a worker that died goes out again at the first
whole hour after its claim would have run out.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import EmailPolicy

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import Clock, rounded_up, to_the_hour
from app.core.settings import Settings
from app.models.mail import OutboxMessage, OutboxStatus

logger = logging.getLogger("undersigned.mail")

# The most steps a delivery waits on, each for up to smtp_timeout_seconds: connect, greeting, EHLO, STARTTLS,
# EHLO again, AUTH, MAIL, RCPT, DATA and the message. A claim outlasts them, so no other worker takes the
# message while it is being sent.
SMTP_STEPS = 10
# What the mail server says about this message itself. Anything else (refused or dropped connections,
# timeouts, a failed greeting or login) means the server cannot be reached or used: not the message's fault.
REFUSALS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


HOUR = timedelta(hours=1)


def next_attempt(now: datetime) -> datetime:
    """When a failed attempt is tried again: the next whole hour."""
    return to_the_hour(now) + HOUR


def _message_id(message: OutboxMessage, settings: Settings) -> str:
    """The same for every attempt at one outbox row, so a receiving server can drop a copy sent again."""
    return f"<outbox-{message.id}.{message.created_at:%Y%m%d%H%M%S%f}@{settings.default_email_domain}>"


class _MailPolicy(EmailPolicy):
    """The standard policy, except that the unsubscribe link stays one unbroken line: a link longer than a folded
    line (any real host name, or an account id of three digits) was sent as an RFC 2047 encoded word, which no
    mail client reads as a link. RFC 5322 allows 998 characters a line."""

    def _for(self, name: str) -> EmailPolicy:
        return self.clone(max_line_length=998) if name.lower() == "list-unsubscribe" else self

    def fold(self, name: str, value: str) -> str:
        return EmailPolicy.fold(self._for(name), name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        return EmailPolicy.fold_binary(self._for(name), name, value)


MAIL_POLICY = _MailPolicy()


def _to_email(message: OutboxMessage, settings: Settings) -> EmailMessage:
    email = EmailMessage(policy=MAIL_POLICY)
    email["From"] = settings.mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = _message_id(message, settings)
    if message.unsubscribe_url:
        # RFC 2369 and RFC 8058: a mail client's "Unsubscribe" POSTs this body to the link, signed out; the link's
        # page asks before a plain GET changes anything, so a scanner opening links turns nothing off.
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.body_text)
    return email


def _send_smtp(email: EmailMessage, settings: Settings) -> None:
    assert settings.smtp_host
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(email)


@dataclass(frozen=True)
class _Claim:
    outbox_id: int
    attempts: int
    email: EmailMessage | None  # None for the development mailbox


def deliver_due(*, sessions: sessionmaker[Session], settings: Settings, clock: Clock, batch: int = 50) -> int:
    """Send what is due; return how many were sent.

    No transaction is open while the mail server is talked to: a slow or silent server holds neither a
    connection's row locks nor, on SQLite, the database's write lock that every signer needs. A server that
    cannot be reached ends the round (the rest would only wait for it too) and never makes a message fail for
    good: only the server's refusal of the message itself counts toward `outbox_max_attempts`.
    """
    sent = 0
    for _ in range(batch):
        claim = claim_next(sessions=sessions, settings=settings, clock=clock)
        if claim is None:
            return sent
        try:
            if claim.email is not None:
                _send_smtp(claim.email, settings)
        except OSError as exc:  # smtplib's errors are OSErrors too
            refused = isinstance(exc, REFUSALS)
            _record_failure(
                sessions=sessions,
                claim=claim,
                error=exc,
                now=clock.now(),
                give_up=refused and claim.attempts >= settings.outbox_max_attempts,
            )
            if not refused:
                return sent
            continue
        with sessions() as db, db.begin():
            db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == claim.outbox_id)
                .values(status=OutboxStatus.sent, sent_at=to_the_hour(clock.now()), last_error=None)
                .execution_options(synchronize_session=False)
            )
        sent += 1
    return sent


def claim_next(*, sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> _Claim | None:
    """Take the next due message: one attempt more, and its next attempt moved past what sending can take."""
    with sessions() as db, db.begin():
        now = clock.now()
        message = db.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.pending, OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(1)
            # Several workers never pick the same row (PostgreSQL; SQLite serialises writers anyway).
            .with_for_update(skip_locked=True)
        )
        if message is None:
            return None
        message.attempts += 1
        # The claim: no other worker takes the message before the first whole hour after sending could end.
        message.next_attempt_at = rounded_up(now + timedelta(seconds=settings.smtp_timeout_seconds * SMTP_STEPS), HOUR)
        email = _to_email(message, settings) if settings.smtp_host else None
        return _Claim(outbox_id=message.id, attempts=message.attempts, email=email)


def _record_failure(
    *, sessions: sessionmaker[Session], claim: _Claim, error: OSError, now: datetime, give_up: bool
) -> None:
    error_type = type(error).__name__
    values: dict[str, object] = {"last_error": error_type[:200]}
    if give_up:
        values["status"] = OutboxStatus.failed
        logger.error("mail failed for good", extra={"outbox_id": claim.outbox_id, "attempts": claim.attempts})
    else:
        values["next_attempt_at"] = next_attempt(now)
        logger.warning(
            "mail delivery failed, will retry",
            extra={"outbox_id": claim.outbox_id, "attempts": claim.attempts, "error_type": error_type},
        )
    with sessions() as db, db.begin():
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claim.outbox_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
