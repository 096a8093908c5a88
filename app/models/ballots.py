"""Ballots (issue #25): questions put to the members or to a petition's signers, answered anonymously with a
per-ballot blind-signed credential, each counted answer a leaf in the ballot's own Merkle log.

Rows tied to an account (issuances) carry the day; answers carry no account and only the hour of the batch that
counted them, with random ids, so their order of arrival is not kept.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, str_enum
from app.core.i18n import N_
from app.models.signatures import GroupKind

QUESTION_MAX = 300
OPTION_MAX = 200
NOTE_MAX = 2000


class BallotKind(StrEnum):
    single = "single"  # one option
    multiple = "multiple"  # up to max_choices options
    scale = "scale"  # the five-point agreement scale (fixed options)
    ranked = "ranked"  # up to max_choices options in order, counted by instant-runoff


class BallotAudience(StrEnum):
    members = "members"  # every verified member
    signers = "signers"  # the petition's signers, named and anonymous alike
    groups = "groups"  # the members of chosen departments or locations (BallotGroup), as they gave them (MemberGroup)


class BallotState(StrEnum):
    scheduled = "scheduled"
    open = "open"
    closed = "closed"


KIND_LABELS = {
    BallotKind.single: N_("Single choice"),
    BallotKind.multiple: N_("Multiple choice"),
    BallotKind.scale: N_("Agreement scale"),
    BallotKind.ranked: N_("Ranked choice"),
}
AUDIENCE_LABELS = {
    BallotAudience.members: N_("Every member"),
    BallotAudience.signers: N_("The petition's signers"),
    BallotAudience.groups: N_("Chosen departments or locations"),
}
STATE_LABELS = {
    BallotState.scheduled: N_("Not open yet"),
    BallotState.open: N_("Open"),
    BallotState.closed: N_("Closed"),
}
# The agreement scale's options, in order (a scale ballot's options are always these).
SCALE_OPTIONS = (
    N_("Strongly disagree"),
    N_("Disagree"),
    N_("Neither agree nor disagree"),
    N_("Agree"),
    N_("Strongly agree"),
)
# A ratification ballot's options, in order.
RATIFICATION_OPTIONS = (N_("Yes"), N_("Partly"), N_("No"))


class Ballot(Base):
    __tablename__ = "ballots"
    __table_args__ = (
        Index("ix_ballots_petition_id", "petition_id"),
        Index("ix_ballots_closes_at", "closes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: an organization-wide "pulse" ballot.
    petition_id: Mapped[int | None] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    # Set for a ratification ballot: "does this response answer our petition?"
    response_id: Mapped[int | None] = mapped_column(ForeignKey("petition_responses.id", ondelete="SET NULL"))
    kind: Mapped[BallotKind] = mapped_column(str_enum(BallotKind, 16))
    audience: Mapped[BallotAudience] = mapped_column(str_enum(BallotAudience, 16))
    question: Mapped[str] = mapped_column(String(QUESTION_MAX))
    note: Mapped[str | None] = mapped_column(Text)
    max_choices: Mapped[int] = mapped_column(Integer)
    # Whole hours, UTC.
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    results_live: Mapped[bool] = mapped_column(Boolean, default=False)
    min_answers: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_hour: Mapped[datetime]
    # The organizers closed it before closes_at (closes_at then holds the hour it closed).
    closed_early: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The ballot's blind-signing key (RFC 9474): SHA-256 hex of the SPKI, the SPKI, and the private key sealed
    # like an IssuingKey's, NULL once destroyed after close.
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    spki: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Public counters: credentials blind-signed for this ballot, and distinct credentials counted.
    credentials_issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    answers_counted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def state_at(self, now: datetime) -> BallotState:
        """The one rule of a ballot's state (app/ballots/service.state calls it; the wallet, below the ballots
        package, reads it here): closed once closed early or past its closing hour, scheduled before its opening
        hour, open between."""
        if self.closed_early or now >= self.closes_at:
            return BallotState.closed
        if now < self.opens_at:
            return BallotState.scheduled
        return BallotState.open

    @property
    def sealing_context(self) -> str:
        """The context its private key is sealed under (app/core/crypto.Sealer)."""
        return self.context_for_key(self.key_id)

    @staticmethod
    def context_for_key(key_id: str) -> str:
        """The sealing context of a ballot key by its id (key rotation reads the column without the row)."""
        return f"ballot-key:{key_id}"


class BallotOption(Base):
    __tablename__ = "ballot_options"

    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label: Mapped[str] = mapped_column(String(OPTION_MAX))


class BallotGroup(Base):
    """A department or location a ballot is put to (audience `groups`): their members may answer, whichever of the
    chosen groups they are in. Committed by name in entry 0 of the ballot's log."""

    __tablename__ = "ballot_groups"

    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("signer_groups.id"), primary_key=True)


class MemberGroup(Base):
    """A member's department or location, as they gave it on their account page (one of each at most), from the
    same managed lists signers choose from: who is due the credential of a ballot put to departments or locations.
    Tied to the account and without a time; a member who gives none is due no such credential."""

    __tablename__ = "member_groups"
    __table_args__ = (Index("ix_member_groups_group_id", "group_id"),)

    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[GroupKind] = mapped_column(str_enum(GroupKind, 16), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("signer_groups.id"))


class BallotIssuance(Base):
    """A member (or named signer) was issued this ballot's credential, on that day; the blind reply kept so any
    device of the wallet can collect it again (it is useless without the wallet's blinding factor)."""

    __tablename__ = "ballot_issuances"

    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True)
    issued_on: Mapped[date] = mapped_column(Date)
    blind_signature: Mapped[bytes | None] = mapped_column(LargeBinary)


class BallotExchange(Base):
    """A signer credential was exchanged for this ballot's credential. No account, no time: signer_tag is a hash
    of the signer credential's message, so the same credential cannot be exchanged twice."""

    __tablename__ = "ballot_exchanges"

    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True)
    signer_tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    blind_signature: Mapped[bytes] = mapped_column(LargeBinary)


class BallotAnswer(Base):
    """A counted answer: the credential (published, as anonymous signatures' tokens are) and the choice. A later
    revision with the same credential supersedes it; only the last counts."""

    __tablename__ = "ballot_answers"
    __table_args__ = (
        UniqueConstraint("ballot_id", "credential", "revision", name="uq_ballot_answers_ballot_credential_revision"),
    )

    # Random, so the order of ids says nothing about the order of answering.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"))
    # SHA-256 hex of the credential's message.
    credential: Mapped[str] = mapped_column(String(64))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    revision: Mapped[int] = mapped_column(Integer)
    # Canonical JSON list of option positions (ranked: in rank order).
    choice: Mapped[str] = mapped_column(Text)
    # The hour of the batch that counted it.
    counted_hour: Mapped[datetime]
    superseded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    log_index: Mapped[int] = mapped_column(Integer)
    # The department or location the answerer counted it under for the breakdown at close, or none: sealed
    # (AES-GCM, context `ballot-answer-group:<ballot id>`, app/ballots/answers.py), a random nonce each and the same
    # length with or without a group, so a copy of the database neither reads it nor tells equal groups apart.
    # NULL only on answers counted before breakdowns existed. Never in the public leaf (see docs/architecture.md).
    sealed_group: Mapped[bytes | None] = mapped_column(LargeBinary)


class BallotLeaf(Base):
    __tablename__ = "ballot_leaves"

    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary)  # canonical JSON, as hashed
    hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256(0x00 || entry)


class BallotCheckpoint(Base):
    """A signed checkpoint of the ballot's log (C2SP signed note), one per batch that counted answers."""

    __tablename__ = "ballot_checkpoints"

    ballot_id: Mapped[int] = mapped_column(ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text)
    hour: Mapped[datetime]
