"""Recording privileged actions in the hash-chained audit log, and checking the chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.audit import GENESIS, AuditEntry, AuditHead

HEAD_ID = 1


class _EntryFields(TypedDict):
    """An entry's fields the chain covers (entry_hash's arguments besides the previous hash)."""

    seq: int
    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    subject: str
    detail: str


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    subject: str,
    detail: str,
) -> str:
    """SHA-256 over the previous hash and this entry's fields in a canonical JSON form."""
    canonical = json.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": at.isoformat(),
            "actor_id": actor_id,
            "actor": actor_name,
            "action": action,
            "subject": subject,
            "detail": detail,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    *, db: Session, rt: Runtime, actor: User | None, action: str, subject: str, detail: Mapping[str, Any] | None = None
) -> AuditEntry:
    """Append an entry in the caller's transaction: it stands or falls with the action it records."""
    head = db.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        db.add(head)
        db.flush()
    # Every entry is tied to an account (its actor), and many concern anonymous features (exports, comments
    # hidden, keys destroyed or rotated): the hour is all it keeps of the time. The sequence number keeps
    # the order, and the chain covers the hour as stored, so verifying is unchanged.
    at = to_the_hour(rt.clock.now())
    detail_text = json.dumps(dict(detail or {}), sort_keys=True, ensure_ascii=False, default=str)
    fields: _EntryFields = {
        "seq": head.seq + 1,
        "at": at,
        "actor_id": actor.id if actor else None,
        "actor_name": actor.display_name if actor else "Undersigned (system)",
        "action": action,
        "subject": subject[:120],
        "detail": detail_text,
    }
    digest = entry_hash(prev_hash=head.hash, **fields)
    entry = AuditEntry(prev_hash=head.hash, hash=digest, **fields)
    db.add(entry)
    head.seq, head.hash = entry.seq, digest
    db.flush()
    return entry


@dataclass(frozen=True)
class Verification:
    entries: int
    problems: list[str]

    @property
    def intact(self) -> bool:
        return not self.problems


def _all(db: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(db.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(*, db: Session) -> Verification:
    """Recompute the chain: a changed, removed or inserted entry breaks it from that point on."""
    problems: list[str] = []
    previous_hash, expected_seq, count = GENESIS, 1, 0
    for entry in _all(db):
        count += 1
        if entry.seq != expected_seq:
            problems.append(f"entry {expected_seq} is missing (found {entry.seq} next)")
        if entry.prev_hash != previous_hash:
            problems.append(f"entry {entry.seq} does not follow the entry before it")
        recomputed = entry_hash(
            prev_hash=entry.prev_hash,
            seq=entry.seq,
            at=entry.at,
            actor_id=entry.actor_id,
            actor_name=entry.actor_name,
            action=entry.action,
            subject=entry.subject,
            detail=entry.detail,
        )
        if recomputed != entry.hash:
            problems.append(f"entry {entry.seq} was changed after it was written")
        previous_hash, expected_seq = entry.hash, entry.seq + 1
    head = db.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID))
    if head is not None and (head.seq != count or head.hash != previous_hash):
        problems.append(f"the chain ends at entry {count} but its head says {head.seq}: entries were removed")
    return Verification(entries=count, problems=problems)


def page(*, db: Session, before: int | None, limit: int = 50) -> list[AuditEntry]:
    statement = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if before is not None:
        statement = statement.where(AuditEntry.seq < before)
    return list(db.scalars(statement))


def size(*, db: Session) -> int:
    return db.scalar(select(func.count()).select_from(AuditEntry)) or 0
