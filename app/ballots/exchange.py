"""A signer credential exchanged for a ballot's credential (issue #25): how a petition's signers, named and anonymous
alike, answer a ballot among them without saying which signature is theirs.

The wallet holds the petition's signer credential (blind-signed under its SignerKey: by the bundle for a named
signer, at signing for an anonymous one) and sends it, without cookies, with a blinded request for the ballot's
credential. The server checks it under the petition's signer key, blind-signs the request under the ballot's key,
and records only that this signer credential was exchanged for this ballot (BallotExchange: a tag derived from it,
and the reply), so it is never exchanged twice. The public count of credentials issued is not moved by the
exchange: the ballot's next checkpoint (its batch, or the jobs round) sets it from the exchange rows. Both signatures are blind: the server cannot tie the signer
credential to a signature or an account, nor the ballot credential it signed to the answer that later spends it.

The tag names the ballot as well as the credential: the exchanges of one signer for two ballots of a petition
carry unrelated tags, so a copy of the database cannot tell that the same person took part in both.

With batching on, the exchange is written with the batch, like everything anonymous: a row written at the moment
of the click sits, by its PostgreSQL xmin (or SQLite rowid), between the timed rows around it, and dates a signer's
first answer to the accounts active then. The request is checked and blind-signed at once (so a bad one is refused
at once, and the batch never needs the key, which the jobs round erases after the close), then waits in this
process's memory only (ExchangeQueue, like answers) and the reply is 202 with when to come back; nothing is written
and nothing handed out. The batch writes the waiting exchanges of a ballot shuffled, in one statement, in the
transaction of its answers (app/ballots/answers.py, write_batch) and by their rule; a tag already written (the same
credential sent to two processes) is not written twice. The same request sent after the batch gets the kept reply
(200); another request with the same credential, 409, as before.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.anonymous.queue import WaitingQueue
from app.ballots import limits, service
from app.core import blindrsa
from app.core.database import insert_for, table_of
from app.core.errors import AppError, Conflict, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.anonymous import SignerKey
from app.models.ballots import Ballot, BallotAudience, BallotExchange, BallotState

TAG_PREFIX = b"undersigned/signer-tag/v1"
MESSAGE_MIN, MESSAGE_MAX = 32, 512
FIELDS_ERROR = N_("Please correct the highlighted fields.")
# Why a poll not put to a petition's signers takes no signer credential, in the words of its audience: the route is
# cookie-less, so the same words go to a member of its audience and to anyone else.
NOT_EXCHANGED = {
    BallotAudience.members: N_(
        "This poll is put to every member, not to a petition's signers: its credential comes with your wallet's "
        "other credentials, not in exchange for a signer credential."
    ),
    BallotAudience.groups: N_(
        "This poll is put to the members of chosen departments or locations, not to a petition's signers: its "
        "credential comes with your wallet's other credentials when your account gives one of them, not in "
        "exchange for a signer credential."
    ),
}


class Refused(AppError):
    """A signer credential or request that cannot be exchanged (400): nothing is issued or written."""

    status_code = 400
    code = "bad_credential"
    title = N_("That credential cannot be exchanged")


# With batching on, a new exchange needs one batch and a moment more before the close: the batch writes it, then the
# wallet comes back for its credential and sends its answer while the poll is still open.
LAST_ANSWER_SECONDS = 60
TOO_LATE = N_(
    "This poll closes in less than %(minutes)s min: a new poll credential is made with the next batch, and it could "
    "not be ready before the poll closes, so no new credential is handed out now. Nothing was recorded."
)


@dataclass(frozen=True)
class Waiting:
    """An exchange accepted for the next batch: its tag and the blind reply made for its request (kept here only)."""

    ballot_id: int
    tag: str
    blinded: bytes
    reply: bytes


class ExchangeQueue(WaitingQueue[Waiting]):
    """Exchanges waiting for the next batch, in this process's memory only (never Redis, never the database: a copy
    of either would date a signer's first answer). A wallet told to come back sends the same request again."""

    def __init__(self) -> None:
        super().__init__(lambda waiting: (waiting.ballot_id, waiting.tag))

    def waiting(self, ballot_id: int, tag: str) -> Waiting | None:
        with self._lock:
            return self._entries.get((ballot_id, tag))


def exchange_queue(rt: Runtime) -> ExchangeQueue:
    return rt.part(ExchangeQueue, ExchangeQueue)


@dataclass(frozen=True)
class Outcome:
    """The blind reply (handed out), or None and the seconds until the batch that writes the exchange (come back
    then with the same request)."""

    reply: bytes | None
    come_back_in: int = 0


def signer_tag(ballot_id: int, message: bytes) -> str:
    """SHA-256 (hex) of the prefix, the ballot's id and the signer credential's message."""
    return hashlib.sha256(TAG_PREFIX + f"/{ballot_id}/".encode() + message).hexdigest()


def _replies_to(public: blindrsa.PublicKey, reply: bytes, blinded: bytes) -> bool:
    """Whether `reply` is the blind signature of `blinded` (reply^e mod n == blinded): the server keeps only the
    reply, and this tells a retry of the same request from a second request with the same credential."""
    value = pow(int.from_bytes(reply, "big"), public.e, public.n)
    return hmac.compare_digest(value.to_bytes(public.modulus_len, "big"), blinded.rjust(public.modulus_len, b"\0"))


def exchange(*, db: Session, rt: Runtime, ballot_id: int, message: bytes, signature: bytes, blinded: bytes) -> Outcome:
    """The ballot credential's blind signature for `blinded`, in exchange for a signer credential of the ballot's
    petition (message, signature). The same credential sent again with the same request gets the same reply (a
    wallet that lost the answer); with another request, a refusal: one credential per signer and ballot. With
    batching on, an exchange not written yet waits for the next batch: Outcome(None, seconds)."""
    ballot = db.get(Ballot, ballot_id)
    if ballot is None:
        raise NotFound(N_("There is no such poll."))
    if ballot.audience is not BallotAudience.signers:
        raise Conflict(NOT_EXCHANGED[ballot.audience])
    state = service.state(ballot, rt.clock.now())
    if state is BallotState.scheduled:
        raise Conflict(N_("This poll is not open yet: its credentials are handed out once it opens."))
    if state is BallotState.closed or ballot.sealed_private is None:
        raise Conflict(N_("This poll has closed: it takes no more answers, and no more credentials are handed out."))
    if not MESSAGE_MIN <= len(message) <= MESSAGE_MAX:
        raise Refused(
            FIELDS_ERROR,
            fields={
                "message": Message(
                    N_("A credential's message is %(min)s to %(max)s bytes."), min=MESSAGE_MIN, max=MESSAGE_MAX
                )
            },
        )
    # A signers' poll always has its petition (service.create refuses one without); None finds no key either.
    key = db.get(SignerKey, ballot.petition_id) if ballot.petition_id is not None else None
    if key is None:
        raise Conflict(N_("This poll's petition hands out no signer credentials, so its signers cannot answer it."))
    try:
        blindrsa.verify(blindrsa.PublicKey.from_spki(key.spki), message, signature)
    except blindrsa.BlindSignatureError:
        raise Refused(
            N_(
                "This signer credential is not valid for this poll's petition: it was not issued by the key of the "
                "petition's signers. (A signing token, a discussion credential or another petition's signer "
                "credential is not one.)"
            ),
            fields={"signature": N_("Does not verify under the key of this petition's signers.")},
        ) from None
    # Counted once the signer credential verifies, before anything is signed or written (app/ballots/limits.py).
    limits.hit(rt, action=limits.EXCHANGE, ballot_id=ballot.id, credential=signer_tag(ballot.id, message))
    public = service.public_key(ballot)
    if not 0 < len(blinded) <= public.modulus_len or int.from_bytes(blinded, "big") >= public.n:
        raise Refused(FIELDS_ERROR, fields={"blinded": N_("Not a blinded request for this poll's key.")})
    tag = signer_tag(ballot.id, message)
    kept = db.get(BallotExchange, (ballot.id, tag))
    if kept is not None:
        return Outcome(_same_request(public, kept.blind_signature, blinded))
    queue = exchange_queue(rt)
    waiting = queue.waiting(ballot.id, tag)
    if waiting is not None:  # sent again before the batch: the same request waits still; another is refused
        _same_request(public, waiting.reply, blinded)
        return Outcome(None, _come_back_in(rt))
    if rt.settings.anonymous_batch_seconds and ballot.closes_at <= rt.clock.now() + timedelta(
        seconds=_come_back_in(rt) + LAST_ANSWER_SECONDS
    ):
        # Taken now, it would be written by the close's last batch and counted as issued, but the wallet coming
        # back after that batch would find the poll closed: told its answer follows, the signer could never send it.
        raise Conflict(Message(TOO_LATE, minutes=max(1, round((_come_back_in(rt) + LAST_ANSWER_SECONDS) / 60))))
    try:
        reply = service.signer_for(rt=rt, ballot=ballot).blind_sign(blinded)
    except blindrsa.BlindSignatureError as error:
        raise Refused(FIELDS_ERROR, fields={"blinded": str(error)}) from None
    except LookupError:  # destroyed by the closing job a moment ago
        raise Conflict(
            N_("This poll has closed: it takes no more answers, and no more credentials are handed out.")
        ) from None
    if rt.settings.anonymous_batch_seconds:
        if not queue.add(Waiting(ballot.id, tag, blinded, reply)):  # another request with it, a moment ago
            first = queue.waiting(ballot.id, tag)
            if first is not None:
                _same_request(public, first.reply, blinded)
        return Outcome(None, _come_back_in(rt))
    table = table_of(BallotExchange)
    inserted = db.execute(
        insert_for(db.get_bind().dialect.name, table)
        .values(ballot_id=ballot.id, signer_tag=tag, blind_signature=reply)
        .on_conflict_do_nothing()
        .returning(table.c.signer_tag)
    ).scalar_one_or_none()
    if inserted is None:  # the same credential, exchanged at the same moment by another request
        db.expire_all()
        raced = db.get(BallotExchange, (ballot.id, tag))
        assert raced is not None
        return Outcome(_same_request(public, raced.blind_signature, blinded))
    # No counter moves here: credentials_issued is public ("hidden among N") and an exchange is a signer's first
    # answer, so it moving now would date that answer to the second. The ballot's next checkpoint (a batch, or the
    # jobs round) counts the exchange rows (app/ballots/log.py, sync_issued).
    return Outcome(reply)


def _come_back_in(rt: Runtime) -> int:
    """Seconds until the wallet may find the exchange written: one batch interval (the batch that lets it out may
    be later, when fewer than k wait: the wallet then hears 202 again and waits one more)."""
    return int(rt.settings.anonymous_batch_seconds)


def unwritten(db: Session, ballot_id: int, waiting: list[Waiting]) -> list[Waiting]:
    """The waiting exchanges of a ballot whose tag has no row yet (in order): one written by another process's batch
    is done, and is neither counted towards a batch's k nor kept waiting."""
    if not waiting:
        return waiting
    written = set(
        db.scalars(
            select(BallotExchange.signer_tag).where(
                BallotExchange.ballot_id == ballot_id, BallotExchange.signer_tag.in_([w.tag for w in waiting])
            )
        )
    )
    return [w for w in waiting if w.tag not in written]


def write_waiting(db: Session, ballot_id: int, waiting: list[Waiting]) -> int:
    """Write a ballot's waiting exchanges (shuffled by the caller) in one statement, in the batch's transaction: a tag
    already written (the same credential sent to two processes) is left as it is. Returns how many were written."""
    if not waiting:
        return 0
    table = table_of(BallotExchange)
    written = db.execute(
        insert_for(db.get_bind().dialect.name, table)
        .values([{"ballot_id": ballot_id, "signer_tag": w.tag, "blind_signature": w.reply} for w in waiting])
        .on_conflict_do_nothing()
        .returning(table.c.signer_tag)
    ).all()
    return len(written)


def _same_request(public: blindrsa.PublicKey, reply: bytes, blinded: bytes) -> bytes:
    if _replies_to(public, reply, blinded):
        return reply
    raise Conflict(
        N_(
            "This signer credential was already exchanged for this poll's credential, with another request: "
            "each signer gets one. Your wallet holds the credential it was given; answer (or change your answer) "
            "with it."
        ),
        fields={"message": N_("Already exchanged for this poll.")},
    )
