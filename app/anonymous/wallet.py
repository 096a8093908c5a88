"""The wallet's credentials, collected in one bundled request: for every open anonymous-enabled petition, a
signing token (spent by one signature) and a discussion credential (which authorises anonymous comments and is
never spent). Both are RFC 9474 blind signatures under the petition's key for that purpose.

The server refuses a request that leaves out any due credential, records only (account, petition, day) for each,
and keeps the blind reply so a wallet that missed it can collect it again: issuance tells who was active, not who
meant to sign or comment on what.

Every device of one worker derives the same blinded requests from the wallet secret (derive.py), so any of them
can finalize the kept replies: the server keeps, besides them, only the wallet's check value (WalletCheck), which
says that a wallet exists and lets a device recognise its recovery code, and opens nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Select, exists, select, update
from sqlalchemy.orm import Session

from app.core import blindrsa
from app.core.database import insert_for
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.anonymous import DiscussionIssuance, DiscussionKey, IssuingKey, TokenIssuance, WalletCheck
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.models.signatures import Signature
from app.organization import eligibility
from app.petitions import issuing_keys


class Purpose(StrEnum):
    sign = "sign"
    discuss = "discuss"


_KEY: dict[Purpose, type[IssuingKey | DiscussionKey]] = {Purpose.sign: IssuingKey, Purpose.discuss: DiscussionKey}
_ISSUANCE: dict[Purpose, type[TokenIssuance | DiscussionIssuance]] = {
    Purpose.sign: TokenIssuance,
    Purpose.discuss: DiscussionIssuance,
}


@dataclass(frozen=True)
class Due:
    purpose: Purpose
    key: issuing_keys.BlindKey


@dataclass(frozen=True)
class Issued:
    petition_id: int
    purpose: Purpose
    key_id: str
    blind_signature: bytes
    spki: bytes  # the key the reply is under: a device finalizing a kept reply needs it, and checks it first


# Either key table: the two have the same columns, and mypy would otherwise widen a choice of them to Base.
_Key = TypeVar("_Key", bound=IssuingKey | DiscussionKey)


def _live(key: type[_Key]) -> Select[_Key]:
    return (
        select(key)
        .join(Petition, Petition.id == key.petition_id)
        .where(Petition.state == PetitionState.open.value, key.sealed_private.is_not(None))
    )


def _get_key(db: Session, key: type[_Key], petition_id: int) -> _Key | None:
    return db.get(key, petition_id)


def due(*, db: Session, user: User) -> list[Due]:
    """Every credential this account can be issued now: a signing token for each open petition it has none for
    and has not signed with a name, and a discussion credential for each it has none for."""
    issued = exists().where(TokenIssuance.account_id == user.id, TokenIssuance.petition_id == IssuingKey.petition_id)
    signed = exists().where(Signature.account_id == user.id, Signature.petition_id == IssuingKey.petition_id)
    tokens = db.scalars(_live(IssuingKey).where(~issued, ~signed).order_by(IssuingKey.petition_id))
    held = exists().where(
        DiscussionIssuance.account_id == user.id, DiscussionIssuance.petition_id == DiscussionKey.petition_id
    )
    credentials = db.scalars(_live(DiscussionKey).where(~held).order_by(DiscussionKey.petition_id))
    return [Due(Purpose.sign, key) for key in tokens] + [Due(Purpose.discuss, key) for key in credentials]


def lock_account(db: Session, user: User) -> None:
    """Issuance and signing with a name take this lock first, so they cannot race past each other's check.
    (SQLite writers already queue behind BEGIN IMMEDIATE.)"""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(User.id).where(User.id == user.id).with_for_update())


def issue(*, db: Session, rt: Runtime, user: User, requests: Sequence[tuple[int, Purpose, bytes]]) -> list[Issued]:
    """Blind-sign every credential due, only when the request asks for exactly all of them."""
    eligibility.require_eligible(db=db, rt=rt, user=user)
    rt.limiter.hit(action="token-issue", subject=f"account:{user.id}", rule=rt.settings.rate_limit_sign)
    lock_account(db, user)
    wanted = {(item.key.petition_id, item.purpose): item.key for item in due(db=db, user=user)}
    asked = [(petition_id, purpose) for petition_id, purpose, _blinded in requests]
    if asked and not wanted:
        # Another device of the same wallet asked a moment before (its requests, derived from the one secret, were
        # the same): nothing was written here, and the replies wait in GET /api/v1/wallet's `issued`.
        raise Conflict(
            N_(
                "Nothing is due any more: these credentials were already issued to your account, perhaps "
                "to another of your devices a moment ago. Collect them from your wallet's kept replies "
                "(GET /api/v1/wallet)."
            ),
            fields={"tokens": "none"},
        )
    if len(set(asked)) != len(asked) or set(asked) != set(wanted):
        listed = ", ".join(f"{petition_id} ({purpose})" for petition_id, purpose in sorted(wanted)) or "none"
        raise Conflict(
            Message(N_("Ask for every credential due, for every open petition, in one request: %(due)s."), due=listed),
            fields={"tokens": listed},
        )
    issued = []
    for petition_id, purpose, blinded in requests:
        key = wanted[(petition_id, purpose)]
        try:
            signature = issuing_keys.signer_for(key=key, rt=rt).blind_sign(blinded)
        except blindrsa.BlindSignatureError as error:
            raise InvalidInput(
                N_("Please correct the highlighted fields."), fields={f"tokens.{petition_id}": str(error)}
            ) from None
        issued.append(
            Issued(
                petition_id=petition_id, purpose=purpose, key_id=key.key_id, blind_signature=signature, spki=key.spki
            )
        )
    # Sorted by petition, one day's date: the rows say nothing about the order or time of the request.
    today = rt.clock.now().date()
    for purpose in Purpose:
        replies = sorted((item.petition_id, item.blind_signature) for item in issued if item.purpose is purpose)
        if not replies:
            continue
        db.add_all(
            _ISSUANCE[purpose](account_id=user.id, petition_id=petition_id, issued_on=today, blind_signature=reply)
            for petition_id, reply in replies
        )
        key_table = _KEY[purpose]
        db.execute(
            update(key_table)
            .where(key_table.petition_id.in_([petition_id for petition_id, _ in replies]))
            .values(tokens_issued=key_table.tokens_issued + 1)
            .execution_options(synchronize_session=False)
        )
    db.flush()
    return issued


def issued_to(*, db: Session, user: User) -> list[Issued]:
    """This account's credentials for open petitions, as issued (blind): for a wallet that missed the reply, or
    another device of the same wallet. A burned signing token (spent or forfeited by a signature with a name) is
    left out: no device may use it any more."""
    found = []
    for purpose in Purpose:
        issuance, key_table = _ISSUANCE[purpose], _KEY[purpose]
        statement = (
            _live(key_table)
            .add_columns(issuance.blind_signature)
            .join(issuance, issuance.petition_id == key_table.petition_id)
            .where(issuance.account_id == user.id, issuance.blind_signature.is_not(None))
            .order_by(key_table.petition_id)
        )
        if issuance is TokenIssuance:
            statement = statement.where(TokenIssuance.burned.is_(False))
        found += [
            Issued(
                petition_id=key.petition_id, purpose=purpose, key_id=key.key_id, blind_signature=reply, spki=key.spki
            )
            for key, reply in db.execute(statement)
        ]
    return found


CHECK_LEN = 16
ELSEWHERE = N_(
    "This account's wallet was started on another device. Link this device to it, or enter its recovery "
    "code: Your wallet (/wallet)."
)


def wallet_check(*, db: Session, user: User) -> bytes | None:
    """The check value of the account's wallet, or None while no device has started one."""
    return db.scalar(select(WalletCheck.check).where(WalletCheck.account_id == user.id))


def register_check(*, db: Session, rt: Runtime, user: User, check: bytes) -> bool:
    """Record that this account's wallet exists, with its check value. True when it is recorded now, False when
    the account already had this very check (another device of the same wallet, or a retry); Conflict when it
    has another: a device that did not win the race to start the account's wallet must join the one that did.

    Two devices racing: ON CONFLICT DO NOTHING lets exactly one row in (on PostgreSQL the second waits for the
    first to commit, then sees its row), and the loser reads the winner's check. The day only, like issuances."""
    rt.limiter.hit(action="wallet-check", subject=f"account:{user.id}", rule=rt.settings.rate_limit_sign)
    if len(check) != CHECK_LEN:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"check": Message(N_("A wallet's check value is %(length)s bytes, base64url."), length=CHECK_LEN)},
        )
    statement = (
        insert_for(db.get_bind().dialect.name, WalletCheck)
        .values(account_id=user.id, check=check, started_on=rt.clock.now().date())
        .on_conflict_do_nothing(index_elements=[WalletCheck.account_id])
        .returning(WalletCheck.account_id)
    )
    if db.execute(statement).scalar_one_or_none() is not None:
        return True
    kept = wallet_check(db=db, user=user)
    if kept is None or kept != check:  # None: the row went with its account in the meantime
        raise Conflict(ELSEWHERE, fields={"check": "another wallet"})
    return False


def holds(*, db: Session, user: User, petition_id: int, purpose: Purpose) -> bool:
    return db.get(_ISSUANCE[purpose], (user.id, petition_id)) is not None


MESSAGE_MIN, MESSAGE_MAX = 32, 512


def verify(
    *, db: Session, rt: Runtime, petition_id: int, purpose: Purpose, message: bytes, signature: bytes
) -> Petition:
    """A credential of `purpose` for an open petition, checked under that petition's live key; refuses a forged
    or foreign one in plain words. Returns the petition."""
    petition = db.get(Petition, petition_id)
    if petition is None:
        raise NotFound(N_("There is no such petition."))
    key = _get_key(db, _KEY[purpose], petition_id)
    if key is None:
        raise Conflict(
            N_("This petition does not take anonymous signatures.")
            if purpose is Purpose.sign
            else N_("This petition does not take anonymous comments.")
        )
    now = rt.clock.now()
    if (
        petition.state_enum is not PetitionState.open
        or key.sealed_private is None
        or (petition.deadline is not None and petition.deadline <= now)
    ):
        raise Conflict(
            N_("This petition has closed; it no longer takes signatures.")
            if purpose is Purpose.sign
            else N_("This petition is closed, so its discussion is read-only.")
        )
    if not MESSAGE_MIN <= len(message) <= MESSAGE_MAX:
        size = (
            N_("A token's message is %(min)s to %(max)s bytes.")
            if purpose is Purpose.sign
            else N_("A credential's message is %(min)s to %(max)s bytes.")
        )
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"message": Message(size, min=MESSAGE_MIN, max=MESSAGE_MAX)},
        )
    try:
        blindrsa.verify(blindrsa.PublicKey.from_spki(key.spki), message, signature)
    except blindrsa.BlindSignatureError:
        raise InvalidInput(
            N_("This token is not valid for this petition: it was not issued by its key.")
            if purpose is Purpose.sign
            else N_("This credential is not valid for this petition: it was not issued by its key."),
            fields={"signature": N_("Does not verify under this petition's key.")},
        ) from None
    return petition
