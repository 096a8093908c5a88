"""Signatures. A row is shaped for every visibility: anonymous ones carry no account, no name and no IP."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class Visibility(StrEnum):
    public = "public"  # name shown to everyone who can read the petition
    organizers = "organizers"  # name shown only to the petition's organizers, sealed at rest
    anonymous = "anonymous"  # nobody can link it to an account


class Signature(Base):
    __tablename__ = "signatures"
    # One signature per account per petition, enforced by the database; anonymous rows have no account,
    # and their one-per-account rule is enforced when tokens are issued.
    __table_args__ = (
        UniqueConstraint("petition_id", "account_id", name="uq_signatures_petition_account"),
        Index("ix_signatures_petition_signed_hour", "petition_id", "signed_hour"),
        Index("ix_signatures_account_id", "account_id"),
    )

    # Random, so the order of ids says nothing about the order of signing.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visibility: Mapped[str] = mapped_column(String(16))
    public_name: Mapped[str | None] = mapped_column(String(80))
    sealed_name: Mapped[bytes | None] = mapped_column(LargeBinary)
    notify_updates: Mapped[bool] = mapped_column(Boolean, default=False)
    # Coarse on purpose: the hour is enough for "trending" and charts, and no finer trace is kept.
    signed_hour: Mapped[datetime]
