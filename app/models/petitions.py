"""Petitions, their text versions, sponsors, organizers, followers, updates and public timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, str_enum
from app.models.accounts import User
from app.models.goals import Goal, next_goal
from app.models.lifecycle import LifecyclePredicates, PetitionState

TITLE_MAX = 120
ASK_MAX = 1000
BACKGROUND_MAX = 6000
DECISION_MAKER_MAX = 120


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RejectionReason(Base):
    """The managed list of reasons a moderator may give; some are not shown publicly in detail."""

    __tablename__ = "rejection_reasons"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(500))
    public: Mapped[bool] = mapped_column(Boolean, default=True)


class Petition(LifecyclePredicates, Base):
    __tablename__ = "petitions"
    __table_args__ = (
        Index("ix_petitions_state_opened_at", "state", "opened_at"),
        Index("ix_petitions_state_signature_count", "state", "signature_count"),
        Index("ix_petitions_state_deadline", "state", "deadline"),
        CheckConstraint("signature_count >= 0", name="signature_count_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[PetitionState] = mapped_column(str_enum(PetitionState, 24), default=PetitionState.draft)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    ask: Mapped[str] = mapped_column(Text)
    background: Mapped[str] = mapped_column(Text)
    decision_maker: Mapped[str | None] = mapped_column(String(DECISION_MAKER_MAX))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    deadline: Mapped[datetime | None]
    allow_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    collect_attributes: Mapped[bool] = mapped_column(Boolean, default=False)
    creator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # 0 while a draft; the number of the latest text version afterwards.
    version: Mapped[int] = mapped_column(default=0)
    # The co-sponsor link is derived from this nonce and the deployment secret: a dump does not reveal it.
    sponsor_nonce: Mapped[str] = mapped_column(String(32))
    sponsor_count: Mapped[int] = mapped_column(default=0)
    signature_count: Mapped[int] = mapped_column(default=0)
    withdrawal_count: Mapped[int] = mapped_column(default=0)
    response_threshold: Mapped[int | None]
    escalation_threshold: Mapped[int | None]
    response_threshold_reached_at: Mapped[datetime | None]
    escalation_threshold_reached_at: Mapped[datetime | None]
    response_due_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    sponsors_requested_at: Mapped[datetime | None]
    moderation_requested_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    rejection_code: Mapped[str | None] = mapped_column(ForeignKey("rejection_reasons.code"))
    rejection_note: Mapped[str | None] = mapped_column(String(1000))
    hidden_reason: Mapped[str | None] = mapped_column(String(1000))
    moderation_lock_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    moderation_lock_until: Mapped[datetime | None]
    # The discussion: how many comments were posted, a moderator's lock (with its public reason), and the hour
    # of the organizers' last daily digest of new top-level comments.
    comment_count: Mapped[int] = mapped_column(default=0, server_default="0")
    comments_locked_reason: Mapped[str | None] = mapped_column(String(500))
    comments_locked_at: Mapped[datetime | None]
    comment_digest_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    category: Mapped[Category] = relationship(lazy="raise")
    rejection: Mapped[RejectionReason | None] = relationship(lazy="raise")
    moderation_lock_by: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[moderation_lock_by_id])

    @property
    def next_goal(self) -> Goal | None:
        """The threshold the count is working towards while it takes signatures (app/models/goals.py)."""
        return next_goal(self)


class PetitionVersion(Base):
    """The text as it stood at each version: what sponsors confirmed and signers signed stays readable."""

    __tablename__ = "petition_versions"
    __table_args__ = (UniqueConstraint("petition_id", "number", name="uq_petition_versions_petition_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    ask: Mapped[str] = mapped_column(Text)
    background: Mapped[str] = mapped_column(Text)
    decision_maker: Mapped[str | None] = mapped_column(String(DECISION_MAKER_MAX))
    note: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class PetitionOrganizer(Base):
    __tablename__ = "petition_organizers"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    is_creator: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime]


class Sponsorship(Base):
    __tablename__ = "sponsorships"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime]


class Follow(Base):
    __tablename__ = "petition_follows"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime]


class PetitionUpdate(Base):
    """A message from the organizers to signers who opted in and followers."""

    __tablename__ = "petition_updates"
    __table_args__ = (Index("ix_petition_updates_petition_created", "petition_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class PetitionEvent(Base):
    """The timeline: what happened to a petition and when; `actor_id` records who decided (moderation)."""

    __tablename__ = "petition_events"
    __table_args__ = (Index("ix_petition_events_petition_at", "petition_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str | None] = mapped_column(String(1000))


class Notification(Base):
    """An event to tell a petition's audience about, fanned out in batches by the worker."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_done_at", "done_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    template: Mapped[str] = mapped_column(String(80))
    # What the event is about: an update, a version, a response or a commitment (by the template).
    subject_id: Mapped[int | None]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class Delivery(Base):
    """One row per recipient per event: nobody is told the same thing twice, even after a retry."""

    __tablename__ = "deliveries"

    event_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime]
