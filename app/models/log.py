"""Each petition's append-only signature log (RFC 9162 Merkle tree): its leaves, its complete subtrees, its head.

Every complete, aligned subtree of two or more leaves is stored once, when its last leaf arrives, so any proof
is a handful of rows read by key (O(log n) at a million entries), and the tree is never recomputed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class LogHead(Base):
    """The log's current size and root; its row is locked while a batch is appended."""

    __tablename__ = "log_heads"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    # The issuance totals the log's last "issuance" entry commits (running totals, written once per batch when
    # the issuing key's counts moved): the next batch appends a new entry when the key's counts differ.
    tokens_issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    spent_by_name: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LogLeaf(Base):
    __tablename__ = "log_leaves"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary)  # the entry's canonical bytes, as hashed
    hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256(0x00 || entry)


class LogNode(Base):
    """The hash of leaves [index * 2^level, (index + 1) * 2^level), for level >= 1, once all are present."""

    __tablename__ = "log_nodes"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LogPending(Base):
    """An entry waiting for the next batch: a withdrawal, a new text version, the key's destruction."""

    __tablename__ = "log_pending"

    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """A signed checkpoint (C2SP signed note), one per batch: what witnesses check and cosign."""

    __tablename__ = "log_checkpoints"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    # The figures the entries up to this size add up to (canonical JSON: signatures, withdrawals, tally,
    # anonymous, forfeits, and the last issuance entry's tokens_issued and spent_by_name), what the page and the
    # API publish as the log's count; NULL on checkpoints made before, counted again when read.
    counts: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class LogCosignature(Base):
    """A witness's signature line over a checkpoint it found consistent with the last one it saw."""

    __tablename__ = "log_cosignatures"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(120), primary_key=True)
    line: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
