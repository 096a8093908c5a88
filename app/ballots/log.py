"""Each ballot's own append-only log (RFC 9162 hashing, app/core/merkle.py) and its signed checkpoints.

Entry 0 commits the ballot: its question, options, kind, audience, times, minimum of answers and the key its
credentials are blind-signed with, so a wallet can refuse a key handed to one worker alone. Each counted answer
is a leaf: the credential (message and signature, which anyone can check under that key), its revision (1, 2...
per credential: the last one counts) and the choice; never an account, never a time.

A checkpoint is a C2SP signed note by the petition logs' Ed25519 key (app/log/checkpoint.py), under the origin
`<key name>/ballots/<id>`, with two extension lines after the root that commit the public counters:

    <origin>\\n<size>\\n<base64 root>\\ncredentials_issued <n>\\nanswers_counted <m>\\n

A new checkpoint is signed after each batch that counted answers, and when the credentials issued moved; never
per request. It keeps the hour only. A signers' ballot's credentials_issued is set from its exchange rows at each
checkpoint, never at the exchange (sync_issued).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import b64url, merkle
from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.log.verifier import encode
from app.models.ballots import Ballot, BallotAnswer, BallotAudience, BallotCheckpoint, BallotExchange, BallotLeaf

COUNTERS = ("credentials_issued", "answers_counted")


def origin(rt: Runtime, ballot_id: int) -> str:
    return f"{signature_log.key_name(rt)}/ballots/{ballot_id}"


def verifier_key(rt: Runtime, ballot_id: int) -> str:
    """The ballot log's verifier key (the deployment's log key, named by the ballot log's origin)."""
    return notes.verifier_key(origin(rt, ballot_id), signature_log.signing_key(rt).public_key())


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ballot_entry(ballot: Ballot, labels: list[str], groups: list[dict[str, object]] | None = None) -> dict[str, object]:
    """A "ballot" entry. `groups`: the departments and locations a ballot of audience `groups` is put to (id, kind,
    name), committed with the rest; left out for the other audiences, whose entries stay as they were."""
    entry: dict[str, object] = {
        "kind": "ballot",
        "ballot": ballot.id,
        "question": ballot.question,
        "options": labels,
        "kind_of_ballot": ballot.kind.value,
        "max_choices": ballot.max_choices,
        "audience": ballot.audience.value,
        "petition": ballot.petition_id,
        "key_id": ballot.key_id,
        "opens_at": _iso(ballot.opens_at),
        "closes_at": _iso(ballot.closes_at),
        "min_answers": ballot.min_answers,
    }
    if groups is not None:
        entry["groups"] = groups
    return entry


def answer_entry(*, message: bytes, signature: bytes, revision: int, choice: list[int]) -> dict[str, object]:
    return {
        "kind": "answer",
        "message": b64url.encode(message),
        "signature": b64url.encode(signature),
        "revision": revision,
        "choice": choice,
    }


def canonical_choice(choice: list[int]) -> str:
    return json.dumps(choice, separators=(",", ":"))


def parse_choice(text: str) -> list[int]:
    return [int(position) for position in json.loads(text)]


def size(db: Session, ballot_id: int) -> int:
    return db.scalar(select(func.count()).select_from(BallotLeaf).where(BallotLeaf.ballot_id == ballot_id)) or 0


def append(db: Session, ballot_id: int, entries: list[dict[str, object]]) -> list[int]:
    """Append entries at the end of the ballot's log (the caller holds the ballot's row locked); their indices."""
    start = size(db, ballot_id)
    rows = []
    for offset, entry in enumerate(entries):
        data = encode(entry)
        rows.append(BallotLeaf(ballot_id=ballot_id, index=start + offset, entry=data, hash=merkle.leaf_hash(data)))
    db.add_all(rows)
    db.flush()
    return [row.index for row in rows]


def root(db: Session, ballot_id: int, tree_size: int) -> bytes:
    hashes = list(
        db.scalars(
            select(BallotLeaf.hash)
            .where(BallotLeaf.ballot_id == ballot_id, BallotLeaf.index < tree_size)
            .order_by(BallotLeaf.index)
        )
    )
    return merkle.root_of(hashes)


def body(*, log_origin: str, tree_size: int, tree_root: bytes, credentials_issued: int, answers_counted: int) -> str:
    return (
        f"{log_origin}\n{tree_size}\n{base64.b64encode(tree_root).decode()}\n"
        f"credentials_issued {credentials_issued}\nanswers_counted {answers_counted}\n"
    )


def sync_issued(db: Session, ballot: Ballot) -> None:
    """A signers' ballot's credentials_issued, set from its exchange rows. An exchange writes only its row (the
    count is public, and moving it at the exchange would date a signer's first answer to the second); the count
    moves here, at a checkpoint: a batch or the jobs round. A members' ballot counts at issuance, in the wallet's
    signed-in bundle (app/anonymous/wallet.py), which dates no answer."""
    if ballot.audience is not BallotAudience.signers:
        return
    exchanged = (
        db.scalar(select(func.count()).select_from(BallotExchange).where(BallotExchange.ballot_id == ballot.id)) or 0
    )
    if exchanged != ballot.credentials_issued:
        ballot.credentials_issued = exchanged
        db.flush()


def checkpoint(db: Session, rt: Runtime, ballot: Ballot, now: datetime) -> BallotCheckpoint:
    """Sign the log as it stands, with the ballot's counters, and keep it (one per size: a later one of the same
    size, made because the credentials issued moved, replaces it)."""
    sync_issued(db, ballot)
    tree_size = size(db, ballot.id)
    log_origin = origin(rt, ballot.id)
    text = body(
        log_origin=log_origin,
        tree_size=tree_size,
        tree_root=root(db, ballot.id, tree_size),
        credentials_issued=ballot.credentials_issued,
        answers_counted=ballot.answers_counted,
    )
    note = text + "\n" + notes.signature_line(text, log_origin, signature_log.signing_key(rt))
    row = db.merge(BallotCheckpoint(ballot_id=ballot.id, size=tree_size, note=note, hour=to_the_hour(now)))
    db.flush()
    return row


def append_ballot_entry(
    *,
    db: Session,
    rt: Runtime,
    ballot: Ballot,
    labels: list[str],
    now: datetime,
    groups: list[dict[str, object]] | None = None,
) -> None:
    """The ballot's texts as a "ballot" entry, and a checkpoint: entry 0 when the ballot is made, then one more for
    each edit before any answer (the last one before the answers counts)."""
    append(db, ballot.id, [ballot_entry(ballot, labels, groups)])
    checkpoint(db, rt, ballot, now)


open_log = append_ballot_entry  # entry 0 and the first checkpoint


def latest_checkpoint(*, db: Session, ballot_id: int) -> BallotCheckpoint | None:
    return db.scalar(
        select(BallotCheckpoint)
        .where(BallotCheckpoint.ballot_id == ballot_id)
        .order_by(BallotCheckpoint.size.desc())
        .limit(1)
    )


def ballot_entries(db: Session, ballot_id: int) -> int:
    """How many leaves precede the first answer: the ballot's own entries (entry 0 and any edit before answers)."""
    first = db.scalar(select(func.min(BallotAnswer.log_index)).where(BallotAnswer.ballot_id == ballot_id))
    return first if first is not None else size(db, ballot_id)


def leaves(*, db: Session, ballot_id: int, start: int, end: int, answers_shown: bool = True) -> list[BallotLeaf]:
    """Leaves [start, end) that the latest checkpoint covers (a leaf appended without one is not yet signed).
    Without `answers_shown`, only the ballot's own entries: the answers would show a kept result (or one below
    the minimum of answers) to anyone who counts them, so they are published with the result."""
    latest = latest_checkpoint(db=db, ballot_id=ballot_id)
    end = min(end, latest.size if latest is not None else 0)
    if not answers_shown:
        end = min(end, ballot_entries(db, ballot_id))
    return list(
        db.scalars(
            select(BallotLeaf)
            .where(BallotLeaf.ballot_id == ballot_id, BallotLeaf.index >= start, BallotLeaf.index < end)
            .order_by(BallotLeaf.index)
        )
    )


def counters(note: str) -> dict[str, int]:
    """The counters a ballot checkpoint's extension lines commit (empty if it has none); raises CheckpointError on
    a malformed one."""
    text, _separator, _signatures = note.partition("\n\n")
    found: dict[str, int] = {}
    for line in text.split("\n")[3:]:
        name, _space, value = line.partition(" ")
        if name in COUNTERS:
            if not value.isdigit():
                raise notes.CheckpointError(f"the checkpoint's {name} is not a count")
            found[name] = int(value)
    return found


def refresh_checkpoint(db: Session, rt: Runtime, ballot: Ballot) -> bool:
    """Sign a new checkpoint if the counters moved since the latest one (credentials issued between batches)."""
    sync_issued(db, ballot)
    latest = latest_checkpoint(db=db, ballot_id=ballot.id)
    if latest is not None and counters(latest.note) == {
        "credentials_issued": ballot.credentials_issued,
        "answers_counted": ballot.answers_counted,
    }:
        return False
    checkpoint(db, rt, ballot, rt.clock.now())
    return True
