"""The outbox: mail is written in the request's transaction and sent afterwards, so a rollback cancels it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.crypto import Sealed
from app.core.database import Base, str_enum
from app.models.mail_kinds import MailKind


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Sealed at rest: addresses, and bodies that greet people by name and carry codes and links.
    to_address: Mapped[str] = mapped_column("to_address_sealed", Sealed("outbox_messages.to_address"))
    subject: Mapped[str] = mapped_column("subject_sealed", Sealed("outbox_messages.subject"))
    body_text: Mapped[str] = mapped_column("body_sealed", Sealed("outbox_messages.body_text"))
    template: Mapped[str] = mapped_column(String(80))
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, 16), default=OutboxStatus.pending)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    # The mail's own unsubscribe link, for the List-Unsubscribe header; None for mail nobody can turn off.
    unsubscribe_url: Mapped[str | None] = mapped_column("unsubscribe_sealed", Sealed("outbox_messages.unsubscribe_url"))


class MailOptOut(Base):
    """One kind of mail about one petition that a person turned off (by a mail's link or their account page).

    Kept to the day: the row is tied to an account, and when someone clicked says nothing anyone needs.
    """

    __tablename__ = "mail_opt_outs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    petition_id: Mapped[int] = mapped_column(
        ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    kind: Mapped[MailKind] = mapped_column(str_enum(MailKind, 16), primary_key=True)
    created_on: Mapped[date]


class PollMailOptOut(Base):
    """An account that turned off mail about polls opening (MailKind.polls, for the whole account: a pulse poll
    names no petition). Kept to the day, as MailOptOut is."""

    __tablename__ = "poll_mail_opt_outs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_on: Mapped[date]
