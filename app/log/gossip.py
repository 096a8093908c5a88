"""`undersigned verify --gossip URL`: tell a witness which checkpoint this reader verified, and fail on a conflict.

A dishonest operator can show two readers two different logs, each validly signed (a fork). Neither reader can
tell alone; a witness that saw one of them can. So, once a log passes every other check, the reader sends the
newest checkpoint it verified to a witness over the C2SP tlog-witness protocol (`add-checkpoint`, the same
requests the deployment makes to be cosigned, app/log/witness.py), with a consistency proof it computes itself
from the entries it holds (it needs nothing more from the server):

- the witness never saw this log, or saw a prefix of it: it checks the proof and cosigns (200). The witness now
  holds this reader's view, and refuses any other view shown to someone else later;
- the witness cosigned a tree of the same size with another root (409), or one of a smaller size that is not a
  prefix of this one (the proof does not verify: 422): the log forked, and this reader fails;
- the witness cosigned a larger tree (409 with its size): the reader asks the server for its checkpoint of that
  size and the consistency proof from the size it verified, checks both itself, and sends that checkpoint with
  no proof, so the witness compares roots. A server that cannot prove its newer tree extends what the reader
  saw, or whose tree of that size is not the witness's, forked. Offline, this cannot be settled: it fails too.

"A second verifier" is just another witness: anyone can run `undersigned witness --serve HOST:PORT --name N
--log <the log's key>` (app/log/witness.py) as a gossip point for a group of readers; it keeps the newest tree it
saw per log and answers the same protocol. No new kind of server is needed, and a reader can gossip with any
standard witness (those of the log's witness network included), since the protocol authenticates nothing but
the log's signature on the checkpoint.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core import merkle
from app.log import checkpoint as notes
from app.log.witness import Post, WitnessError, request_body
from app.log.witness import _post as http_post

SIZE_TYPE = "text/x.tlog.size"
# For a witness ahead of the reader: the server's checkpoint of that size and the consistency proof to it from
# the size the reader verified, or None when the server has none.
Newer = Callable[[int, int], tuple[str, list[bytes]] | None]


@dataclass
class Gossiped:
    url: str
    size: int = 0  # the size the witness agreed to
    cosigners: dict[str, int] = field(default_factory=dict)  # trusted witnesses whose cosignature verified
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.problems:
            return f"gossip with {self.url}: conflict"
        signed = f", cosigned by {', '.join(sorted(self.cosigners))}" if self.cosigners else ""
        return f"gossip with {self.url}: the witness agrees with checkpoint {self.size}{signed}"


def gossip(
    url: str,
    *,
    note: str,
    leaves: Sequence[bytes],
    log_key: tuple[str, Ed25519PublicKey],
    witnesses: dict[str, Ed25519PublicKey],
    post: Post = http_post,
    newer: Newer | None = None,
) -> Gossiped:
    """Send `note`, a checkpoint over `leaves` (their leaf hashes) that the reader verified, to the witness at
    `url` (its submission prefix). Conflicts become problems; a witness that cannot be asked is a WitnessError."""
    target = url.rstrip("/").removesuffix("/add-checkpoint") + "/add-checkpoint"
    result = Gossiped(url=url)
    checkpoint = notes.parse(note)[0]
    size, root = checkpoint.size, checkpoint.root
    if size != len(leaves):
        raise ValueError("the checkpoint gossiped is the one over every leaf held")
    subtrees = merkle.memory_subtrees(leaves) if leaves else None
    old = 0
    for _attempt in range(4):  # a witness another log's update moves meanwhile answers with a new size again
        proof = merkle.consistency_proof(old, size, subtrees) if subtrees is not None and 0 < old < size else []
        status, kind, text = post(target, request_body(old, proof, note))
        if status == 200:
            result.size = size
            _cosigners(result, note, text, witnesses)
            return result
        if status == 409 and kind.split(";")[0].strip() == SIZE_TYPE:
            theirs = _size(text)
            if theirs > size:
                return _ahead(result, target, theirs, size, root, log_key, witnesses, post, newer)
            if theirs == old:
                raise WitnessError(f"The witness at {url} asked twice for the size it already has ({old}).")
            old = theirs
            continue
        if status == 409:
            result.problems.append(
                f"the witness at {url} has cosigned another tree of {size} entries of this log: "
                "the log forked (you and someone else were shown different logs)"
            )
            return result
        if status == 422:
            result.problems.append(
                f"the witness at {url} has cosigned a tree of {old} entries that is not the "
                f"start of the {size} you were shown: the log forked"
            )
            return result
        raise WitnessError(_refusal(url, status, text))
    raise WitnessError(f"The witness at {url} kept answering with another size: try again.")


def _ahead(
    result: Gossiped,
    target: str,
    theirs: int,
    size: int,
    root: bytes,
    log_key: tuple[str, Ed25519PublicKey],
    witnesses: dict[str, Ed25519PublicKey],
    post: Post,
    newer: Newer | None,
) -> Gossiped:
    """The witness cosigned more entries than the reader saw: the server must prove its tree of that size
    extends the reader's, and the witness must hold that same tree."""
    found = newer(size, theirs) if newer is not None else None
    if found is None:
        result.problems.append(
            f"the witness at {result.url} has cosigned {theirs} entries of this log, more than the {size} you were "
            + (
                "shown, and the server shows no checkpoint of that size: you may be shown an old or forked log"
                if newer is not None
                else "saved: check online to see whether those extend yours"
            )
        )
        return result
    note, proof = found
    try:
        later = notes.verify(note, log_key=log_key).checkpoint
        if later.size != theirs:
            raise notes.CheckpointError("the server answered with a checkpoint of another size")
        merkle.verify_consistency(size, theirs, root, later.root, proof)
    except (notes.CheckpointError, merkle.ProofError) as error:
        result.problems.append(
            f"the log's checkpoint of {theirs} entries, which the witness at {result.url} has "
            f"seen, is not an extension of the {size} you verified ({error}): the log forked"
        )
        return result
    status, kind, text = post(target, request_body(theirs, [], note))
    if status == 200:
        result.size = theirs
        _cosigners(result, note, text, witnesses)
    elif status == 409 and kind.split(";")[0].strip() != SIZE_TYPE:
        result.problems.append(
            f"the witness at {result.url} has cosigned another tree of {theirs} entries than the "
            "one this server shows: the log forked"
        )
    elif status == 409:
        raise WitnessError(f"The witness at {result.url} moved on while it was asked: try again.")
    else:
        raise WitnessError(_refusal(result.url, status, text))
    return result


def _cosigners(result: Gossiped, note: str, text: str, witnesses: dict[str, Ed25519PublicKey]) -> None:
    """The answer's cosignatures from witnesses the reader trusts, each checked; other lines are ignored, as the
    protocol asks of clients."""
    body = notes.parse(note)[1]
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != notes.DASH or parts[1] not in witnesses:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
            timestamp = notes._witness_signature(parts[1], witnesses[parts[1]], raw[:4], raw[4:], body)
        except (ValueError, notes.CheckpointError):
            result.problems.append(f"the witness {parts[1]} answered with a cosignature that does not verify")
            continue
        if timestamp is not None:
            result.cosigners[parts[1]] = timestamp


def _size(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise WitnessError("The witness answered 409 without the size it last cosigned.") from None
    if value < 0:
        raise WitnessError("The witness answered 409 with a negative size.")
    return value


def _refusal(url: str, status: int, text: str) -> str:
    return {
        403: f"The witness at {url} does not trust this log's key (403): it cannot be gossiped with.",
        404: f"The witness at {url} does not know this log (404): its operator adds the log's key "
        "(`undersigned witness --serve ... --log <log_key>`).",
    }.get(status, f"The witness at {url} answered {status}: {text[:200].strip()}")
