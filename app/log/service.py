"""Each petition's public, append-only signature log: what goes in, when, and the checkpoints over it.

Entry 0 (the petition's text and issuing key) is written when the petition opens. Everything after it is
appended by `flush`, run with each batch of anonymous signatures: every signature not yet in the log
(named or anonymous) and the pending withdrawals, text versions and key destruction, shuffled together, so
the log's order says no more than the batch did; then, when they moved, the issuing key's running totals
(tokens issued, spent by name) as one issuance entry: dated by the batch, naming nobody. Each flush ends with a
signed checkpoint that records what its entries add up to; checkpoints are never made per request (a fresh one
per reader could tag readers). The log signs under its origin as key name, one name per log.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import bindparam, delete, func, or_, select, union, update
from sqlalchemy.orm import Session, sessionmaker

from app.core import b64url
from app.core.clock import to_the_hour
from app.core.database import table_of
from app.core.errors import InvalidInput, NotFound
from app.core.i18n import N_
from app.core.logging import COARSE_TIME
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import checkpoint as notes
from app.log import tree
from app.log.verifier import encode
from app.models.anonymous import DiscussionKey, IssuingKey, SignerKey
from app.models.log import LogCheckpoint, LogCosignature, LogHead, LogLeaf, LogPending
from app.models.petitions import Petition, PetitionVersion
from app.models.signatures import Signature, Visibility

logger = logging.getLogger("undersigned.log")


def key_name(rt: Runtime) -> str:
    """The log key's name in signed notes: the deployment's host."""
    return urlsplit(rt.settings.base_url).netloc or "undersigned"


def signing_key(rt: Runtime) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(rt.keyring.key("log-checkpoint"))


def verifier_key(rt: Runtime) -> str:
    """The deployment's log key, named by its host: what operators publish once, and readers may pin."""
    return notes.verifier_key(key_name(rt), signing_key(rt).public_key())


def log_verifier_key(rt: Runtime, petition_id: int) -> str:
    """One petition's log key, named by the log's origin (the same key; a key id of its own)."""
    return notes.verifier_key(origin(rt, petition_id), signing_key(rt).public_key())


def origin(rt: Runtime, petition_id: int) -> str:
    return f"{key_name(rt)}/petitions/{petition_id}"


def witnesses(rt: Runtime) -> dict[str, Ed25519PublicKey]:
    return dict(notes.parse_verifier_key(text) for text in rt.settings.log_witnesses)


def open_log(*, db: Session, rt: Runtime, petition: Petition, now: datetime) -> None:
    """Entry 0: the petition's text as signed, the key anonymous tokens are checked against, and the key its
    discussion credentials are (`discussion_key_id`: logs opened before it was committed lack the field, and
    their wallets hold the discussion key to the published list and the first key accepted)."""
    if tree.head(db, petition.id) is not None:
        return  # a petition restored after hiding keeps its log
    version = db.scalar(
        select(PetitionVersion)
        .where(PetitionVersion.petition_id == petition.id)
        .order_by(PetitionVersion.number.desc())
        .limit(1)
    )
    key = db.get(IssuingKey, petition.id)
    discussion_key = db.get(DiscussionKey, petition.id)
    signer_key = db.get(SignerKey, petition.id)
    entry = {
        "kind": "petition",
        "petition": petition.id,
        "version": version.number if version else 0,
        "text_sha256": version.content_hash if version else None,
        "key_id": key.key_id if key else None,
        "discussion_key_id": discussion_key.key_id if discussion_key else None,
        # The key signer credentials are made with (issue #25), so a wallet can refuse one shown to it alone.
        "signer_key_id": signer_key.key_id if signer_key else None,
    }
    tree.append(db, petition.id, [encode(entry)])
    _checkpoint(db, rt, petition.id, now)


def pend(*, db: Session, petition_id: int, entry: dict[str, object]) -> None:
    """Queue an entry for the next batch (only for petitions whose log has begun)."""
    if tree.head(db, petition_id) is not None:
        db.add(LogPending(petition_id=petition_id, entry=encode(entry)))


def withdrawn(*, db: Session, petition_id: int, log_index: int | None, reason: str | None = None) -> None:
    """A signature left the count: if the log holds it, the log says so (a signature not yet logged never was)."""
    if log_index is not None:
        entry: dict[str, object] = {"kind": "withdrawal", "entry": log_index}
        if reason:
            entry["reason"] = reason
        pend(db=db, petition_id=petition_id, entry=entry)


def _signature_entry(signature: Signature) -> dict[str, object]:
    if signature.visibility == Visibility.anonymous:
        return {
            "kind": "signature",
            "visibility": "anonymous",
            "message": b64url.encode(signature.token_message or b""),
            "signature": b64url.encode(signature.token_signature or b""),
        }
    # A signature with a name: a random commitment, never the name. The log is public and cannot forget, and
    # a name may later be hidden by its signer or erased after the retention period; the signer's receipt
    # (leaf index and hash) is how they find their entry.
    return {"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)}


def flush(*, sessions: sessionmaker[Session], rt: Runtime) -> int:
    """Append everything waiting, petition by petition, each with its checkpoint. Returns entries appended."""
    with sessions() as db:
        petition_ids = list(
            db.scalars(
                union(
                    select(Signature.petition_id).where(
                        Signature.log_index.is_(None), Signature.invalidation_id.is_(None)
                    ),
                    select(LogPending.petition_id),
                    select(IssuingKey.petition_id)
                    .join(LogHead, LogHead.petition_id == IssuingKey.petition_id)
                    .where(
                        or_(
                            IssuingKey.tokens_issued != LogHead.tokens_issued,
                            IssuingKey.spent_by_name != LogHead.spent_by_name,
                        )
                    ),
                )
            )
        )
    appended = 0
    for petition_id in petition_ids:
        try:
            with sessions.begin() as db:
                appended += _flush_petition(db, rt, petition_id)
        except Exception:
            # By the hour, like the anonymous batch this runs in (app/main.py): its moment is not to be dated.
            logger.exception(
                "appending to a petition's log failed; the entries wait for the next batch", extra={COARSE_TIME: True}
            )
    return appended


def _flush_petition(db: Session, rt: Runtime, petition_id: int) -> int:
    head = tree.head(db, petition_id, lock=True)
    if head is None:
        petition = db.get(Petition, petition_id)
        if petition is None or petition.opened_at is None:
            return 0  # never opened: nothing of it is public yet
        open_log(db=db, rt=rt, petition=petition, now=rt.clock.now())  # opened before petitions had logs
    # Locked, and rows a withdrawal or a void holds are skipped: such a row is either gone when this batch
    # commits, or logged by the next one, and its withdrawal entry then refers to the leaf it got.
    signatures = list(
        db.scalars(
            select(Signature)
            .where(
                Signature.petition_id == petition_id, Signature.log_index.is_(None), Signature.invalidation_id.is_(None)
            )
            .with_for_update(skip_locked=True)
        )
    )
    pending = list(db.scalars(select(LogPending).where(LogPending.petition_id == petition_id).order_by(LogPending.id)))
    # A pending withdrawal refers to a leaf already in the log, so the whole batch can be shuffled.
    items: list[tuple[bytes, Signature | None]] = [(encode(_signature_entry(s)), s) for s in signatures]
    items += [(row.entry, None) for row in pending]
    random.SystemRandom().shuffle(items)
    # The issuance totals go last, as of this batch: the count of tokens a checkpoint's anonymous entries are
    # bounded by is then signed with them, and raising it later covers nothing already logged.
    key = db.get(IssuingKey, petition_id)
    head = tree.head(db, petition_id)
    assert head is not None
    if key is not None and (key.tokens_issued, key.spent_by_name) != (head.tokens_issued, head.spent_by_name):
        items.append(
            (encode({"kind": "issuance", "tokens_issued": key.tokens_issued, "spent_by_name": key.spent_by_name}), None)
        )
        head.tokens_issued, head.spent_by_name = key.tokens_issued, key.spent_by_name
    if not items:
        return 0
    first, _root = tree.append(db, petition_id, [entry for entry, _ in items])
    positions = [
        {"sid": signature.id, "position": first + offset}
        for offset, (_entry, signature) in enumerate(items)
        if signature is not None
    ]
    if positions:
        db.execute(
            update(table_of(Signature))
            .where(table_of(Signature).c.id == bindparam("sid"))
            .values(log_index=bindparam("position")),
            positions,
        )
    if pending:
        db.execute(delete(LogPending).where(LogPending.id.in_([row.id for row in pending])))
    _checkpoint(db, rt, petition_id, rt.clock.now())
    return len(items)


def _checkpoint(db: Session, rt: Runtime, petition_id: int, now: datetime) -> LogCheckpoint:
    page_changed(db, petition_id)
    head = tree.head(db, petition_id)
    assert head is not None
    log_origin = origin(rt, petition_id)
    note = notes.sign(notes.Checkpoint(origin=log_origin, size=head.size, root=head.root), log_origin, signing_key(rt))
    previous = latest_checkpoint(db=db, petition_id=petition_id)
    # The hour only: a checkpoint's minute, next to a batch holding one anonymous signature, dated that
    # signature closely enough to match it with a sign-in.
    row = LogCheckpoint(
        petition_id=petition_id,
        size=head.size,
        root=head.root,
        note=note,
        counts=json.dumps(_counted(db, petition_id, previous, head.size), sort_keys=True),
        created_at=to_the_hour(now),
    )
    db.merge(row)
    db.flush()
    return row


EMPTY_COUNTS: dict[str, int | None] = {
    "signatures": 0,
    "withdrawals": 0,
    "tally": 0,
    "anonymous": 0,
    "forfeits": 0,
    "tokens_issued": None,
    "spent_by_name": None,
}


def _counted(db: Session, petition_id: int, previous: LogCheckpoint | None, size: int) -> dict[str, int | None]:
    """What the entries up to `size` add up to: the previous checkpoint's counts and the entries since."""
    if previous is not None and previous.size <= size:
        counts, start = dict(counts_of(db, previous)), previous.size
    else:
        counts, start = dict(EMPTY_COUNTS), 0
    for entry in db.scalars(
        select(LogLeaf.entry)
        .where(LogLeaf.petition_id == petition_id, LogLeaf.index >= start, LogLeaf.index < size)
        .order_by(LogLeaf.index)
    ):
        _add(counts, json.loads(entry))
    return counts


def _add(counts: dict[str, int | None], entry: dict[str, object]) -> None:
    kind = entry.get("kind")
    if kind == "signature":
        counts["signatures"] = (counts["signatures"] or 0) + 1
        if entry.get("visibility") == "anonymous":
            counts["anonymous"] = (counts["anonymous"] or 0) + 1
    elif kind == "withdrawal":
        counts["withdrawals"] = (counts["withdrawals"] or 0) + 1
    elif kind == "forfeit":
        counts["forfeits"] = (counts["forfeits"] or 0) + 1
    elif kind == "issuance":
        counts["tokens_issued"] = entry.get("tokens_issued")  # type: ignore[assignment]
        counts["spent_by_name"] = entry.get("spent_by_name")  # type: ignore[assignment]
    counts["tally"] = (counts["signatures"] or 0) - (counts["withdrawals"] or 0)


def counts_of(db: Session, row: LogCheckpoint) -> dict[str, int | None]:
    """The figures a checkpoint's entries add up to (counted once for a checkpoint made before they were kept)."""
    if row.counts is None:
        counts = dict(EMPTY_COUNTS)
        for entry in db.scalars(
            select(LogLeaf.entry)
            .where(LogLeaf.petition_id == row.petition_id, LogLeaf.index < row.size)
            .order_by(LogLeaf.index)
        ):
            _add(counts, json.loads(entry))
        return counts
    return json.loads(row.counts)


def waiting(*, db: Session, petition_id: int) -> dict[str, int]:
    """What the counts shown now hold beyond the newest checkpoint: signatures written since (none of them
    anonymous between batches), and the withdrawals and forfeits the next batch appends."""
    unlogged = (
        Signature.petition_id == petition_id,
        Signature.log_index.is_(None),
        Signature.invalidation_id.is_(None),
    )
    signatures = db.scalar(select(func.count()).where(*unlogged)) or 0
    anonymous = db.scalar(select(func.count()).where(*unlogged, Signature.visibility == Visibility.anonymous)) or 0
    kinds = [
        json.loads(entry).get("kind")
        for entry in db.scalars(select(LogPending.entry).where(LogPending.petition_id == petition_id))
    ]
    return {
        "signatures": signatures,
        "anonymous": anonymous,
        "withdrawals": kinds.count("withdrawal"),
        "forfeits": kinds.count("forfeit"),
    }


def latest_checkpoint(*, db: Session, petition_id: int) -> LogCheckpoint | None:
    return db.scalar(
        select(LogCheckpoint)
        .where(LogCheckpoint.petition_id == petition_id)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    )


def checkpoints(*, db: Session, petition_id: int, after_size: int, limit: int) -> list[LogCheckpoint]:
    return list(
        db.scalars(
            select(LogCheckpoint)
            .where(LogCheckpoint.petition_id == petition_id, LogCheckpoint.size > after_size)
            .order_by(LogCheckpoint.size)
            .limit(limit)
        )
    )


def cosigners(*, db: Session, petition_id: int, size: int) -> list[LogCosignature]:
    return list(
        db.scalars(
            select(LogCosignature)
            .where(LogCosignature.petition_id == petition_id, LogCosignature.size == size)
            .order_by(LogCosignature.witness)
        )
    )


def with_cosignatures(db: Session, row: LogCheckpoint) -> str:
    (note,) = notes_with_cosignatures(db, [row])
    return note


def notes_with_cosignatures(db: Session, rows: list[LogCheckpoint]) -> list[str]:
    """Each checkpoint's note with its witnesses' lines appended, all read in one query."""
    if not rows:
        return []
    lines: dict[int, list[str]] = {row.size: [] for row in rows}
    for cosignature in db.scalars(
        select(LogCosignature)
        .where(LogCosignature.petition_id == rows[0].petition_id, LogCosignature.size.in_(list(lines)))
        .order_by(LogCosignature.size, LogCosignature.witness)
    ):
        lines[cosignature.size].append(cosignature.line + "\n")
    return [row.note + "".join(lines[row.size]) for row in rows]


def cosign(*, db: Session, rt: Runtime, petition_id: int, size: int, line: str) -> LogCosignature:
    """Keep a configured witness's signature line over the checkpoint of `size`, once it verifies."""
    page_changed(db, petition_id)
    row = db.get(LogCheckpoint, (petition_id, size))
    if row is None:
        raise NotFound(N_("There is no checkpoint of that size."))
    known = witnesses(rt)
    line = line.strip()
    try:
        if "\n" in line or "\r" in line:
            raise notes.CheckpointError("send exactly one signature line")
        _checkpoint_value, _body, lines = notes.parse(row.note + line + "\n")
        name = lines[-1][0]
        if name not in known:
            raise notes.CheckpointError("this witness is not among the deployment's witnesses")
        signed = notes.verify(
            row.note + line + "\n", log_key=(key_name(rt), signing_key(rt).public_key()), witnesses={name: known[name]}
        )
        if name not in signed.signers:
            raise notes.CheckpointError("the line is not this witness's signature over the checkpoint")
    except notes.CheckpointError as error:
        raise InvalidInput(str(error), fields={"line": str(error)}) from None
    cosignature = LogCosignature(
        petition_id=petition_id, size=size, witness=name, line=line, created_at=to_the_hour(rt.clock.now())
    )
    db.merge(cosignature)
    db.flush()
    return cosignature


def leaf_hash(*, db: Session, petition_id: int, index: int | None) -> bytes | None:
    if index is None:
        return None
    return db.scalar(select(LogLeaf.hash).where(LogLeaf.petition_id == petition_id, LogLeaf.index == index))


def witnessed(*, db: Session, petition_id: int, latest: LogCheckpoint) -> dict[str, object]:
    """Who cosigned the latest checkpoint and when (to the hour), and, if nobody has yet, the newest checkpoint a
    witness did cosign: what the petition page says of how fresh the witnessing is."""
    on_head = cosigners(db=db, petition_id=petition_id, size=latest.size)
    newest = db.scalar(
        select(LogCosignature)
        .where(LogCosignature.petition_id == petition_id)
        .order_by(LogCosignature.size.desc(), LogCosignature.created_at.desc())
        .limit(1)
    )
    return {
        "witnesses": [row.witness for row in on_head],
        "at": max((row.created_at for row in on_head), default=None),
        "newest_size": newest.size if newest is not None else None,
        "newest_at": newest.created_at if newest is not None else None,
        "behind": latest.size - newest.size if newest is not None else None,
    }
