"""Signatures. A row is shaped for every visibility: anonymous ones carry no account, no name and no IP."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.crypto import Sealed
from app.core.database import Base, str_enum


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
        # What the next batch appends to the log: a small, partial index.
        Index(
            "ix_signatures_unlogged",
            "petition_id",
            postgresql_where=text("log_index IS NULL"),
            sqlite_where=text("log_index IS NULL"),
        ),
    )

    # Random, so the order of ids says nothing about the order of signing.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility, 16))
    public_name: Mapped[str | None] = mapped_column(String(80))
    sealed_name: Mapped[bytes | None] = mapped_column(LargeBinary)
    notify_updates: Mapped[bool] = mapped_column(Boolean, default=False)
    # Coarse on purpose: the hour is enough for "trending" and charts, and no finer trace is kept.
    signed_hour: Mapped[datetime]
    department_id: Mapped[int | None] = mapped_column(ForeignKey("signer_groups.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("signer_groups.id"))
    # Anonymous signatures only: the token that proves a verified member signed, published in the petition's log
    # (RFC 9474: the message the browser made up, and the petition key's signature on it).
    token_message: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Its leaf in the petition's signature log, once a batch has appended it (NULL until then).
    log_index: Mapped[int | None] = mapped_column(Integer)
    # Set when moderators void the signature (see Invalidation); a voided signature is kept, not counted.
    invalidation_id: Mapped[int | None] = mapped_column(ForeignKey("invalidations.id"), index=True)


class GroupKind(StrEnum):
    department = "department"
    location = "location"


class SignerGroup(Base):
    """The managed lists of departments and locations signers may give."""

    __tablename__ = "signer_groups"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_signer_groups_kind_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[GroupKind] = mapped_column(str_enum(GroupKind, 16))
    name: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Invalidation(Base):
    """Moderators voiding signatures that match a rule (for example a list of compromised addresses)."""

    __tablename__ = "invalidations"

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    moderator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The addresses a moderator listed: sealed, as they say whose signatures were voided.
    rule: Mapped[str] = mapped_column("rule_sealed", Sealed("invalidations.rule"))
    reason: Mapped[str] = mapped_column(String(500))
    matched: Mapped[int]
    created_at: Mapped[datetime]
