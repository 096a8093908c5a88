"""Delivering the outbox: SMTP in deployments, the development mailbox otherwise; retries with backoff."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import Clock
from app.core.settings import Settings
from app.mail.models import OutboxMessage, OutboxStatus

logger = logging.getLogger("undersigned.mail")

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS))


def _to_email(message: OutboxMessage, settings: Settings) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    # A stable id per outbox row lets receiving servers drop a duplicate if a retry follows a lost reply.
    email["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain=settings.default_email_domain)
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


def deliver_due(*, sessions: sessionmaker[Session], settings: Settings, clock: Clock, batch: int = 50) -> int:
    """Send what is due; return how many were sent. Each message is committed on its own."""
    sent = 0
    for _ in range(batch):
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
                return sent
            message.attempts += 1
            try:
                if settings.smtp_host:
                    _send_smtp(_to_email(message, settings), settings)
            except (OSError, smtplib.SMTPException) as exc:
                message.last_error = f"{type(exc).__name__}"[:200]
                if message.attempts >= settings.outbox_max_attempts:
                    message.status = OutboxStatus.failed
                    logger.error("mail failed for good", extra={"outbox_id": message.id,
                                                                "attempts": message.attempts})
                else:
                    message.next_attempt_at = now + backoff(message.attempts)
                    logger.warning("mail delivery failed, will retry", extra={
                        "outbox_id": message.id, "attempts": message.attempts, "error_type": type(exc).__name__})
                continue
            message.status = OutboxStatus.sent
            message.sent_at = now
            message.last_error = None
            sent += 1
    return sent
