"""Leadership's official responses, the commitments they make, and the organizers' judgement of them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, str_enum
from app.core.i18n import N_

SUMMARY_MAX = 200
ROLE_MAX = 120
DETAILS_MAX = 6000


class ResponseStatus(StrEnum):
    acknowledged = "acknowledged"
    under_review = "under_review"
    accepted = "accepted"
    partially_accepted = "partially_accepted"
    declined = "declined"


class CommitmentStatus(StrEnum):
    planned = "planned"
    in_progress = "in_progress"
    done = "done"
    dropped = "dropped"


OPEN_COMMITMENT_STATES = frozenset({CommitmentStatus.planned, CommitmentStatus.in_progress})

RESPONSE_LABELS = {
    ResponseStatus.acknowledged: N_("Acknowledged"),
    ResponseStatus.under_review: N_("Under review"),
    ResponseStatus.accepted: N_("Accepted"),
    ResponseStatus.partially_accepted: N_("Partially accepted"),
    ResponseStatus.declined: N_("Declined"),
}
COMMITMENT_LABELS = {
    CommitmentStatus.planned: N_("Planned"),
    CommitmentStatus.in_progress: N_("In progress"),
    CommitmentStatus.done: N_("Done"),
    CommitmentStatus.dropped: N_("Dropped"),
}


class PetitionResponse(Base):
    __tablename__ = "petition_responses"
    __table_args__ = (Index("ix_petition_responses_petition_created", "petition_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    responder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The responder's role as they gave it ("Chief People Officer"), shown with their name; None: not given.
    responder_role: Mapped[str | None] = mapped_column(String(ROLE_MAX))
    summary: Mapped[str] = mapped_column(String(SUMMARY_MAX))
    details: Mapped[str] = mapped_column(Text)
    status: Mapped[ResponseStatus] = mapped_column(str_enum(ResponseStatus, 24))
    created_at: Mapped[datetime]


class Commitment(Base):
    __tablename__ = "commitments"
    __table_args__ = (Index("ix_commitments_status_due_on", "status", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("petition_responses.id", ondelete="CASCADE"), index=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str] = mapped_column(String(120))
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[CommitmentStatus] = mapped_column(str_enum(CommitmentStatus, 16), default=CommitmentStatus.planned)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CommitmentUpdate(Base):
    """Progress on a commitment: each status change or note, kept."""

    __tablename__ = "commitment_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitments.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[CommitmentStatus] = mapped_column(str_enum(CommitmentStatus, 16))
    note: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]


class Judgement(Base):
    """The organizers' verdict on a response: does it answer the petition? One per response, revisable."""

    __tablename__ = "response_judgements"
    __table_args__ = (UniqueConstraint("response_id", name="uq_response_judgements_response_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("petition_responses.id", ondelete="CASCADE"))
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    answers: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(1000))
    follow_up_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
