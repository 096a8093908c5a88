"""Anonymous signing: tokens issued in bundles, redeemed without an account, written in shuffled batches.

1. A signed-in member's wallet asks, in one request, for a token for every open anonymous-enabled petition it
   holds none for; the server refuses a request that picks some of them, records only (account, petition, day)
   and returns blind signatures (RFC 9474), so issuance tells who was active, not who meant to sign what.
2. The wallet unblinds, and later sends (message, signature) without cookies. The server checks the signature
   under the petition's key, refuses a message it has seen (its SHA-256 is the nullifier), answers 202 and
   holds the entry in memory until the next batch: shuffled, random row ids, the batch's hour as the only time.
3. Signing with a name redeems the same token with the account attached, so nobody signs both ways; it stays
   spent if that signature is withdrawn (the issuance is marked burned, and the key counts it in spent_by_name).
4. A member whose token is on no device at hand may forfeit it instead: sign with a name and give up signing the
   petition anonymously. The issuance is burned, the key's public `forfeited` count moves, and the petition's log
   gets a counted entry that names nobody ({"kind": "forfeit"}), so anyone can check anonymous signatures <=
   tokens_issued - spent_by_name - forfeited.
5. An anonymous signature may carry a blinded request for the petition's signer credential (issue #25): the
   server blind-signs it under the petition's signer key when it accepts the signature, and keeps the reply
   (SignerReply, under the token's nullifier) only when the batch writes the signature: a reply handed out at once
   would let one token sent to two server processes earn two signer credentials, and a row written at submission
   would date it. With batching off (tests, development) the signature is written at once, and the reply comes
   back in the 202.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import threading
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import batching, wallet
from app.anonymous.queue import Entry, anonymous_queue
from app.core import b64url, blindrsa
from app.core.clock import to_the_hour
from app.core.database import insert_for, table_of
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_, Message
from app.core.logging import COARSE_TIME
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as signature_log
from app.models.accounts import User
from app.models.anonymous import IssuingKey, SignerKey, SignerReply, SpentToken, TokenIssuance
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition, PetitionEvent
from app.models.signatures import Signature, Visibility
from app.petitions import issuing_keys
from app.petitions.thresholds import record_crossings

logger = logging.getLogger("undersigned.anonymous")


def decode(value: str, *, field: str) -> bytes:
    """Base64url (padding optional), as the wallet and the API speak it; a clear error for anything else."""
    try:
        return b64url.decode(value)
    except ValueError:
        raise InvalidInput(N_("Please correct the highlighted fields."), fields={field: "Not base64url."}) from None


encode = b64url.encode


def nullifier(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()


# -- issuance ------------------------------------------------------------------------------------------------

lock_account = wallet.lock_account


def holds_token(*, db: Session, user: User, petition_id: int) -> bool:
    return wallet.holds(db=db, user=user, petition_id=petition_id, purpose=wallet.Purpose.sign)


# -- redemption ----------------------------------------------------------------------------------------------


def check_token(*, db: Session, rt: Runtime, petition_id: int, message: bytes, signature: bytes) -> str:
    """Verify a token for a petition and return its nullifier; refuse a forged, foreign or spent one."""
    wallet.verify(
        db=db, rt=rt, petition_id=petition_id, purpose=wallet.Purpose.sign, message=message, signature=signature
    )
    spent = nullifier(message)
    if db.get(SpentToken, (petition_id, spent)) is not None or anonymous_queue(rt).holds(petition_id, spent):
        raise Conflict(
            N_(
                "This token was already used: each member signs once. A token used by a signature with a "
                "name stays used after that signature is withdrawn; you may sign again with your name."
            )
        )
    return spent


FORFEIT_CHOICE = N_("I give up signing this petition anonymously")


def redeem_named(
    *, db: Session, rt: Runtime, petition_id: int, user: User, token: tuple[bytes, bytes] | None, forfeit: bool = False
) -> bool:
    """Before a signature with a name: a member who was issued a token must sign with it, so it is spent, and
    spent for good: withdrawing the signature later does not free it. Nothing here or on the signature keeps
    the token's nullifier next to the account; the issuance only says the right was used by name.

    Without the token (it is on another device, or on none any more), the member may forfeit it: `forfeit` says
    they chose to. A token sent along wins over a forfeit (it is spent, nothing is given up); a forfeit by a member
    who holds no unspent token is an ordinary signature with a name. Returns whether a token was forfeited."""
    lock_account(db, user)
    issuance = db.get(TokenIssuance, (user.id, petition_id))
    if issuance is None:
        return False  # never issued: the signature's own one-per-account rule is enough; nothing to give up
    if issuance.burned:
        return False  # signed with a name before and withdrew: the token stays spent; signing by name is fine
    if token is None:
        if not forfeit:
            raise Conflict(
                Message(
                    N_(
                        "You were issued this petition's anonymous-signing token, and it was not sent with this "
                        "signature. Either sign where your wallet holds it (the browser where you collected it, or "
                        "`undersigned client`), anonymously or with your name; or sign here with your name and give "
                        'up signing this petition anonymously: tick "%(choice)s" on the petition\'s page (with the '
                        'API, send "forfeit": true).'
                    ),
                    choice=Message(FORFEIT_CHOICE),
                ),
                fields={"forfeit": FORFEIT_CHOICE},
            )
        _forfeit(db, petition_id, issuance)
        return True
    message, signature = token
    spent = check_token(db=db, rt=rt, petition_id=petition_id, message=message, signature=signature)
    if not _spend(db, petition_id, spent):  # a batch spent it a moment ago
        raise Conflict(N_("This token was already used: each member signs once."))
    issuance.burned = True
    db.execute(
        update(IssuingKey)
        .where(IssuingKey.petition_id == petition_id)
        .values(spent_by_name=IssuingKey.spent_by_name + 1)
        .execution_options(synchronize_session=False)
    )
    return False


def _forfeit(db: Session, petition_id: int, issuance: TokenIssuance) -> None:
    """Give up the token without it: the issuance is burned (so it can never be redeemed by name), the public
    count moves, and the log gets an entry naming nobody, appended shuffled with the next batch (no time, no
    account, no position of its own). All in the signing transaction: a refused signature forfeits nothing.

    The server never saw the token, so it cannot know whether it was, or will be, used anonymously from the
    device that holds it: a forfeit is taken on the member's word. That is why the count is public and in the
    log: anonymous signatures <= tokens_issued - spent_by_name - forfeited holds while everyone is honest, and
    anonymous signatures <= tokens_issued - spent_by_name holds regardless, so `forfeited` is the most that
    dishonest forfeits could add (`undersigned verify` prints it)."""
    issuance.burned = True
    db.execute(
        update(IssuingKey)
        .where(IssuingKey.petition_id == petition_id)
        .values(forfeited=IssuingKey.forfeited + 1)
        .execution_options(synchronize_session=False)
    )
    signature_log.pend(db=db, petition_id=petition_id, entry={"kind": "forfeit"})


def _spend(db: Session, petition_id: int, spent: str) -> bool:
    """Record a token as spent; False when it already was (the primary key decides, without an error)."""
    table = table_of(SpentToken)
    return (
        db.execute(
            insert_for(db.get_bind().dialect.name, table)
            .values(petition_id=petition_id, nullifier=spent)
            .on_conflict_do_nothing()
            .returning(table.c.nullifier)
        ).scalar_one_or_none()
        is not None
    )


def burn_on_withdrawal(*, db: Session, petition_id: int, user: User) -> None:
    """A named signature was withdrawn: its token (if it spent one) stays spent. A member who signed with a
    name before holding a token gets a burned issuance with no token, so none is issued to them now: whoever
    withdrew may sign again with a name, never anonymously. Neither public counter moves, and the row carries
    the key's day, not the withdrawal's."""
    key = db.get(IssuingKey, petition_id)
    if key is None:
        return  # the petition takes no anonymous signatures
    table = table_of(TokenIssuance)
    db.execute(
        insert_for(db.get_bind().dialect.name, table)
        .values(
            account_id=user.id,
            petition_id=petition_id,
            issued_on=key.created_at.date(),
            blind_signature=None,
            burned=True,
        )
        .on_conflict_do_nothing()
    )


def unspent_for(*, db: Session, user: User | None, petition_id: int) -> bool:
    """Whether this account was issued the petition's token and has neither spent nor forfeited it: it then signs
    with the token, from wherever its wallet holds it, or forfeits it to sign by name elsewhere."""
    if user is None:
        return False
    issuance = db.get(TokenIssuance, (user.id, petition_id))
    return issuance is not None and not issuance.burned and issuance.blind_signature is not None


def burned_for(*, db: Session, user: User | None, petition_id: int) -> bool:
    """Whether this account's right to sign the petition anonymously was used by a signature with its name."""
    if user is None:
        return False
    return bool(
        db.scalar(
            select(TokenIssuance.burned).where(
                TokenIssuance.account_id == user.id, TokenIssuance.petition_id == petition_id
            )
        )
    )


class SignerReplies:
    """Signer credentials blind-signed for signatures waiting in this process's queue, by (petition, nullifier):
    kept in memory beside the queue, and written (and so handed out) only with their signature."""

    def __init__(self) -> None:
        self._replies: dict[tuple[int, str], bytes] = {}
        self._lock = threading.Lock()

    def put(self, petition_id: int, spent: str, reply: bytes) -> None:
        with self._lock:
            self._replies[(petition_id, spent)] = reply

    def get(self, petition_id: int, spent: str) -> bytes | None:
        return self._replies.get((petition_id, spent))

    def forget(self, entries: list[Entry]) -> None:
        """Their batch was written (with the replies of those it counted): nothing more to keep."""
        with self._lock:
            for entry in entries:
                self._replies.pop((entry.petition_id, entry.nullifier), None)


def _signer_replies(rt: Runtime) -> SignerReplies:
    return rt.part(SignerReplies, SignerReplies)


def _signer_reply(db: Session, rt: Runtime, petition_id: int, blinded: bytes) -> bytes | None:
    """The signer credential's blind signature for this request, or None when the petition has no live signer key
    (it opened before signer credentials existed, and the worker's round has not made one yet)."""
    key = db.get(SignerKey, petition_id)
    if key is None or key.sealed_private is None:
        return None
    try:
        return issuing_keys.signer_for(key=key, rt=rt).blind_sign(blinded)
    except blindrsa.BlindSignatureError as error:
        raise InvalidInput(
            N_("Please correct the highlighted fields."), fields={"signer_blinded": str(error)}
        ) from None
    except LookupError:  # destroyed by another process a moment ago: the petition is closing
        return None


def submit(
    *,
    db: Session,
    rt: Runtime,
    petition_id: int,
    message: bytes,
    signature: bytes,
    signer_blinded: bytes | None = None,
) -> bytes | None:
    """Accept an anonymous signature for the next batch (written at once, in this transaction, when batching is
    off: tests and development). With `signer_blinded`, the signer credential's blind signature is made now and
    returned when the signature was written at once; otherwise None, and it is kept with the signature by its
    batch (signer_reply_for)."""
    spent = check_token(db=db, rt=rt, petition_id=petition_id, message=message, signature=signature)
    reply = _signer_reply(db, rt, petition_id, signer_blinded) if signer_blinded is not None else None
    entry = Entry(petition_id=petition_id, message=message, signature=signature, nullifier=spent)
    if not anonymous_queue(rt).add(entry):
        raise Conflict(N_("This token was already used: each member signs once."))
    if reply is not None:
        _signer_replies(rt).put(petition_id, spent, reply)
    if rt.settings.anonymous_batch_seconds == 0:
        anonymous_queue(rt).discard(entry)
        written = _write_group(db, rt, petition_id, [entry])
        _signer_replies(rt).forget([entry])
        if not written:
            raise Conflict(N_("This token was already used: each member signs once."))
        return reply
    return None


def signer_reply_for(*, db: Session, petition_id: int, nullifier: str) -> bytes | None:
    """The signer credential's blind signature kept for the anonymous signature whose token has this nullifier
    (written with it), or None."""
    kept = db.get(SignerReply, (petition_id, nullifier))
    return kept.blind_signature if kept is not None else None


def write_batch(*, sessions: sessionmaker[Session], rt: Runtime) -> int:
    """Write the queued entries, shuffled, each petition's group in one transaction, when the batching rule
    lets it out (app/anonymous/batching.py); a group held back goes back to the queue. Returns how many
    counted."""
    entries = anonymous_queue(rt).take()
    random.SystemRandom().shuffle(entries)
    by_petition: dict[int, list[Entry]] = {}
    for entry in entries:
        by_petition.setdefault(entry.petition_id, []).append(entry)
    written = 0
    for petition_id, group in by_petition.items():
        try:
            with sessions.begin() as db:
                reason = _publish_reason(db, rt, petition_id, len(group))
                if reason is None:
                    for entry in group:
                        anonymous_queue(rt).add(entry)
                    continue
                count = _write_group(db, rt, petition_id, group)
                if 0 < count < rt.settings.min_group_size and rt.settings.anonymous_batch_seconds:
                    _note_small_batch(db, rt, petition_id, count, reason)
                written += count
            anonymous_queue(rt).release(petition_id)
            _signer_replies(rt).forget(group)
        except Exception:
            # Back in the queue for the next batch: accepted signatures are not dropped for one bad moment.
            for entry in group:
                anonymous_queue(rt).add(entry)
            logger.exception(
                "writing a batch of anonymous signatures failed; it is kept for the next one", extra={COARSE_TIME: True}
            )
    return written


def _hour_number(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def _publish_reason(db: Session, rt: Runtime, petition_id: int, count: int) -> batching.Reason | None:
    """Whether this petition's group goes out in this batch; with batching off, always."""
    settings = rt.settings
    if not settings.anonymous_batch_seconds:
        return batching.Reason.full
    now = rt.clock.now()
    petition = db.get(Petition, petition_id)
    # Closing: closed already, or its deadline falls before the next batch.
    closing = (
        petition is None
        or petition.state is not PetitionState.open
        or (
            petition.deadline is not None
            and petition.deadline <= now + timedelta(seconds=settings.anonymous_batch_seconds)
        )
    )
    since = anonymous_queue(rt).held_since(petition_id, _hour_number(now))
    return batching.publish_reason(
        count=count,
        hours_waited=batching.hours_between(since, _hour_number(now)),
        closing=closing,
        min_group_size=settings.min_group_size,
        max_delay_seconds=settings.anonymous_max_delay_seconds,
    )


SMALL_BATCH_EVENT = "anonymous_small_batch"


def _note_small_batch(db: Session, rt: Runtime, petition_id: int, count: int, reason: batching.Reason) -> None:
    """The public note on the timeline when a batch smaller than k had to go out: its signers hide among fewer
    than the promised k in that batch, and anyone may know it. The hour only."""
    k = rt.settings.min_group_size
    hours = batching.max_delay_hours(rt.settings.anonymous_max_delay_seconds)
    why = (
        "the petition was closing"
        if reason is batching.Reason.closing
        else f"they had waited the maximum delay ({hours} hour{'' if hours == 1 else 's'})"
    )
    noun = "signature was" if count == 1 else "signatures were"
    db.add(
        PetitionEvent(
            petition_id=petition_id,
            kind=SMALL_BATCH_EVENT,
            at=to_the_hour(rt.clock.now()),
            actor_id=None,
            public=True,
            detail=f"{count} anonymous {noun} published in a batch smaller than {k}, because {why}",
        )
    )


def _write_group(db: Session, rt: Runtime, petition_id: int, group: list[Entry]) -> int:
    """Write one petition's entries. They were accepted while it was open (the check was made then), so they
    count even if it closed before this batch. Only the hour is written anywhere, threshold events included."""
    page_changed(db, petition_id)
    hour = to_the_hour(rt.clock.now())
    # A token spent meanwhile (another process, a named signature) counts once.
    fresh = [entry for entry in group if _spend(db, petition_id, entry.nullifier)]
    replies = _signer_replies(rt)
    signer_replies = [(entry.nullifier, replies.get(petition_id, entry.nullifier)) for entry in group]
    if not fresh:
        return 0
    kept = {entry.nullifier for entry in fresh}
    written_replies = [
        SignerReply(petition_id=petition_id, nullifier=spent, blind_signature=reply)
        for spent, reply in signer_replies
        if reply is not None and spent in kept
    ]
    if written_replies:
        db.add_all(written_replies)
        db.execute(
            update(SignerKey)
            .where(SignerKey.petition_id == petition_id)
            .values(tokens_issued=SignerKey.tokens_issued + len(written_replies))
            .execution_options(synchronize_session=False)
        )
    db.add_all(
        Signature(
            id=secrets.token_hex(16),
            petition_id=petition_id,
            account_id=None,
            visibility=Visibility.anonymous,
            public_name=None,
            sealed_name=None,
            notify_updates=False,
            signed_hour=hour,
            department_id=None,
            location_id=None,
            invalidation_id=None,
            token_message=entry.message,
            token_signature=entry.signature,
        )
        for entry in fresh
    )
    db.flush()
    db.execute(
        update(IssuingKey)
        .where(IssuingKey.petition_id == petition_id)
        .values(anonymous_signatures=IssuingKey.anonymous_signatures + len(fresh))
        .execution_options(synchronize_session=False)
    )
    count = db.execute(
        update(Petition)
        .where(Petition.id == petition_id)
        .values(signature_count=Petition.signature_count + len(fresh))
        .returning(Petition.signature_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    petition = db.get_one(Petition, petition_id)
    db.refresh(petition)
    record_crossings(db=db, rt=rt, petition=petition, count=count, now=hour)
    return len(fresh)


# -- what anyone can check -------------------------------------------------------------------------------------


def published(*, db: Session, petition_id: int, after: str | None, limit: int) -> list[Signature]:
    """Anonymous entries as written, by their random id: each token's message and signature."""
    statement = select(Signature).where(
        Signature.petition_id == petition_id, Signature.visibility == Visibility.anonymous
    )
    if after:
        statement = statement.where(Signature.id > after)
    return list(db.scalars(statement.order_by(Signature.id).limit(limit)))


def anonymous_count(*, db: Session, petition_id: int) -> int:
    """Read from the key's counter: counting rows would cost more with every signature (the petition page
    shows it)."""
    return db.scalar(select(IssuingKey.anonymous_signatures).where(IssuingKey.petition_id == petition_id)) or 0
