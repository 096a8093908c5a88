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
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Select, exists, or_, select, update
from sqlalchemy.orm import Session

from app.core import blindrsa
from app.core.database import insert_for
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.anonymous import (
    DiscussionIssuance,
    DiscussionKey,
    IssuingKey,
    SignerIssuance,
    SignerKey,
    TokenIssuance,
    WalletCheck,
)
from app.models.ballots import Ballot, BallotAudience, BallotGroup, BallotIssuance, BallotState, MemberGroup
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.models.signatures import Signature
from app.organization import eligibility
from app.petitions import issuing_keys
from app.petitions import repository as petition_rows


class Purpose(StrEnum):
    sign = "sign"
    discuss = "discuss"
    signer = "signer"  # per petition: proof of a signature that names none, for ballots among its signers
    ballot = "ballot"  # per ballot among the members


# What clients from before ballots know: they are shown nothing else, and must ask for all of these.
PETITION_PURPOSES = frozenset({Purpose.sign, Purpose.discuss})
ALL_PURPOSES = frozenset(Purpose)

_PetitionKey = IssuingKey | DiscussionKey | SignerKey
_PetitionIssuance = TokenIssuance | DiscussionIssuance | SignerIssuance
_KEY: dict[Purpose, type[_PetitionKey]] = {
    Purpose.sign: IssuingKey,
    Purpose.discuss: DiscussionKey,
    Purpose.signer: SignerKey,
}
_ISSUANCE: dict[Purpose, type[_PetitionIssuance]] = {
    Purpose.sign: TokenIssuance,
    Purpose.discuss: DiscussionIssuance,
    Purpose.signer: SignerIssuance,
}


@dataclass(frozen=True)
class Due:
    purpose: Purpose
    key: issuing_keys.BlindKey | Ballot  # a petition's key, or the ballot (which holds its own)

    @property
    def petition_id(self) -> int | None:
        return self.key.petition_id

    @property
    def ballot_id(self) -> int | None:
        return self.key.id if isinstance(self.key, Ballot) else None

    @property
    def subject(self) -> int:
        """What the credential is for: the ballot's id for a ballot credential, else the petition's."""
        return self.key.id if isinstance(self.key, Ballot) else self.key.petition_id


@dataclass(frozen=True)
class Issued:
    petition_id: int | None
    purpose: Purpose
    key_id: str
    blind_signature: bytes
    spki: bytes  # the key the reply is under: a device finalizing a kept reply needs it, and checks it first
    ballot_id: int | None = None

    @property
    def subject(self) -> int:
        subject = self.ballot_id if self.purpose is Purpose.ballot else self.petition_id
        assert subject is not None
        return subject


# Any petition key table: they have the same columns, and mypy would otherwise widen a choice of them to Base.
_Key = TypeVar("_Key", bound=IssuingKey | DiscussionKey | SignerKey)


def _live(key: type[_Key]) -> Select[_Key]:
    return (
        select(key)
        .join(Petition, Petition.id == key.petition_id)
        .where(Petition.state == PetitionState.open.value, key.sealed_private.is_not(None))
    )


def _get_key(db: Session, key: type[_Key], petition_id: int) -> _Key | None:
    return db.get(key, petition_id)


def open_ballots(db: Session, now: datetime, audience: BallotAudience | None = BallotAudience.members) -> list[Ballot]:
    """Ballots open now with a live key, among the members by default (`audience` None: every audience).
    Ballot.state_at decides; the query only narrows. A petition's ballot only while a signed-out reader may read
    the petition, as an answer to it is taken (app/ballots/answers.py): a hidden petition's poll takes no answer,
    so it is neither due nor its key published."""
    statement = (
        select(Ballot)
        .outerjoin(Petition, Petition.id == Ballot.petition_id)
        .where(or_(Ballot.petition_id.is_(None), petition_rows.readable_to_everyone()))
    )
    if audience is not None:
        statement = statement.where(Ballot.audience == audience)
    found = db.scalars(
        statement.where(
            Ballot.sealed_private.is_not(None),
            Ballot.closed_early.is_(False),
            Ballot.opens_at <= now,
            Ballot.closes_at > now,
        ).order_by(Ballot.id)
    )
    return [ballot for ballot in found if ballot.state_at(now) is BallotState.open]


def _standing_named_signature(petition_id: Any, user: User) -> Any:
    return exists().where(
        Signature.account_id == user.id, Signature.petition_id == petition_id, Signature.invalidation_id.is_(None)
    )


def due(
    *, db: Session, user: User, now: datetime | None = None, purposes: frozenset[Purpose] = ALL_PURPOSES
) -> list[Due]:
    """Every credential this account can be issued now: a signing token for each open petition it has none for
    and has not signed with a name, a discussion credential for each it has none for, a signer credential for
    each open petition it signed with a name (while that signature stands) and holds none for, and a ballot
    credential for each open ballot among the members, or among departments or locations it gave on its account
    and is in, that it holds none for. `purposes`: only those a client knows."""
    found: list[Due] = []
    if Purpose.sign in purposes:
        issued = exists().where(
            TokenIssuance.account_id == user.id, TokenIssuance.petition_id == IssuingKey.petition_id
        )
        signed = exists().where(Signature.account_id == user.id, Signature.petition_id == IssuingKey.petition_id)
        tokens = db.scalars(_live(IssuingKey).where(~issued, ~signed).order_by(IssuingKey.petition_id))
        found += [Due(Purpose.sign, key) for key in tokens]
    if Purpose.discuss in purposes:
        held = exists().where(
            DiscussionIssuance.account_id == user.id, DiscussionIssuance.petition_id == DiscussionKey.petition_id
        )
        credentials = db.scalars(_live(DiscussionKey).where(~held).order_by(DiscussionKey.petition_id))
        found += [Due(Purpose.discuss, key) for key in credentials]
    if Purpose.signer in purposes:
        held_signer = exists().where(
            SignerIssuance.account_id == user.id, SignerIssuance.petition_id == SignerKey.petition_id
        )
        signer_keys = db.scalars(
            _live(SignerKey)
            .where(_standing_named_signature(SignerKey.petition_id, user), ~held_signer)
            .order_by(SignerKey.petition_id)
        )
        found += [Due(Purpose.signer, key) for key in signer_keys]
    if Purpose.ballot in purposes:
        held_ballots = set(db.scalars(select(BallotIssuance.ballot_id).where(BallotIssuance.account_id == user.id)))
        moment = now if now is not None else datetime.now(UTC)
        mine = set(db.scalars(_groups_ballots(user)))
        found += [
            Due(Purpose.ballot, ballot)
            for ballot in open_ballots(db, moment, audience=None)
            if ballot.id not in held_ballots
            and (
                ballot.audience is BallotAudience.members
                or (ballot.audience is BallotAudience.groups and ballot.id in mine)
            )
        ]
    return found


def _groups_ballots(user: User) -> Select[int]:
    """The ballots put to a department or location this account gave (app/ballots/audiences.py)."""
    mine = select(MemberGroup.group_id).where(MemberGroup.account_id == user.id)
    return select(BallotGroup.ballot_id).where(BallotGroup.group_id.in_(mine))


def _refuse_outside_audience(db: Session, user: User, asked: Sequence[tuple[Purpose, int]]) -> None:
    """A clear refusal for a ballot credential asked for a ballot put to departments or locations this account did
    not give, before the refusal that lists what is due (which would not say why this one is missing)."""
    ballot_ids = [subject for purpose, subject in asked if purpose is Purpose.ballot]
    if not ballot_ids:
        return
    outside = db.scalar(
        select(Ballot.id)
        .where(
            Ballot.id.in_(ballot_ids),
            Ballot.audience == BallotAudience.groups,
            Ballot.id.not_in(_groups_ballots(user)),
        )
        .limit(1)
    )
    if outside is not None:
        raise Forbidden(
            Message(
                N_(
                    "Poll %(id)s is put to members of chosen departments or locations, and the department and "
                    "location on your account are not among them, so it has no credential for you. If yours are "
                    "missing or wrong, give them on your account page."
                ),
                id=outside,
            ),
            fields={"tokens": Message(N_("Poll %(id)s is not put to your department or location."), id=outside)},
        )


def lock_account(db: Session, user: User) -> None:
    """Issuance and signing with a name take this lock first, so they cannot race past each other's check.
    (SQLite writers already queue behind BEGIN IMMEDIATE.)"""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(User.id).where(User.id == user.id).with_for_update())


# A request item: (purpose, subject, blinded request); the subject is the petition's id, or the ballot's.
Request = tuple[Purpose, int, bytes]


def issue(*, db: Session, rt: Runtime, user: User, requests: Sequence[Request]) -> list[Issued]:
    """Blind-sign every credential due, only when the request asks for exactly all of them: every signing token
    and discussion credential due, always; and every signer and ballot credential due as soon as it asks for any
    (a client from before ballots asks for none of them, and is not shown them)."""
    eligibility.require_eligible(db=db, rt=rt, user=user)
    rt.limiter.hit(action="token-issue", subject=f"account:{user.id}", rule=rt.settings.rate_limit_sign)
    lock_account(db, user)
    asked = [(purpose, subject) for purpose, subject, _blinded in requests]
    _refuse_outside_audience(db, user, asked)
    purposes = ALL_PURPOSES if any(purpose not in PETITION_PURPOSES for purpose, _ in asked) else PETITION_PURPOSES
    wanted = {
        (item.purpose, item.subject): item.key for item in due(db=db, user=user, now=rt.clock.now(), purposes=purposes)
    }
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
        listed = (
            ", ".join(
                f"{'ballot ' if purpose is Purpose.ballot else ''}{subject} ({purpose})"
                for purpose, subject in sorted(wanted, key=lambda item: (item[0] is Purpose.ballot, item[1], item[0]))
            )
            or "none"
        )
        raise Conflict(
            Message(
                N_("Ask for every credential due, for every open petition and ballot, in one request: %(due)s."),
                due=listed,
            ),
            fields={"tokens": listed},
        )
    issued = []
    for purpose, subject, blinded in requests:
        key = wanted[(purpose, subject)]
        try:
            signer = (
                issuing_keys.ballot_signer(ballot=key, rt=rt)
                if isinstance(key, Ballot)
                else issuing_keys.signer_for(key=key, rt=rt)
            )
            signature = signer.blind_sign(blinded)
        except blindrsa.BlindSignatureError as error:
            raise InvalidInput(
                N_("Please correct the highlighted fields."), fields={f"tokens.{subject}": str(error)}
            ) from None
        issued.append(
            Issued(
                petition_id=key.petition_id,
                purpose=purpose,
                key_id=key.key_id,
                blind_signature=signature,
                spki=key.spki,
                ballot_id=key.id if isinstance(key, Ballot) else None,
            )
        )
    # Sorted by subject, one day's date: the rows say nothing about the order or time of the request.
    today = rt.clock.now().date()
    for purpose in Purpose:
        replies = sorted((item.subject, item.blind_signature) for item in issued if item.purpose is purpose)
        if not replies:
            continue
        subjects = [subject for subject, _ in replies]
        if purpose is Purpose.ballot:
            db.add_all(
                BallotIssuance(account_id=user.id, ballot_id=subject, issued_on=today, blind_signature=reply)
                for subject, reply in replies
            )
            db.execute(
                update(Ballot)
                .where(Ballot.id.in_(subjects))
                .values(credentials_issued=Ballot.credentials_issued + 1)
                .execution_options(synchronize_session=False)
            )
            continue
        db.add_all(
            _ISSUANCE[purpose](account_id=user.id, petition_id=subject, issued_on=today, blind_signature=reply)
            for subject, reply in replies
        )
        key_table = _KEY[purpose]
        db.execute(
            update(key_table)
            .where(key_table.petition_id.in_(subjects))
            .values(tokens_issued=key_table.tokens_issued + 1)
            .execution_options(synchronize_session=False)
        )
    db.flush()
    return issued


def issued_to(
    *, db: Session, user: User, now: datetime | None = None, purposes: frozenset[Purpose] = ALL_PURPOSES
) -> list[Issued]:
    """This account's credentials, as issued (blind): for a wallet that missed the reply, or another device of
    the same wallet. Signing tokens and discussion credentials of open petitions (a burned signing token, spent or
    forfeited by a signature with a name, left out: no device may use it any more); signer credentials of any
    petition (a ballot among its signers may open after it closed); ballot credentials of open ballots."""
    found = []
    for purpose in (Purpose.sign, Purpose.discuss, Purpose.signer):
        if purpose not in purposes:
            continue
        issuance, key_table = _ISSUANCE[purpose], _KEY[purpose]
        base = select(key_table) if purpose is Purpose.signer else _live(key_table)
        statement = (
            base.add_columns(issuance.blind_signature)
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
    if Purpose.ballot in purposes:
        moment = now if now is not None else datetime.now(UTC)
        rows = db.execute(
            select(Ballot, BallotIssuance.blind_signature)
            .join(BallotIssuance, BallotIssuance.ballot_id == Ballot.id)
            .where(BallotIssuance.account_id == user.id, BallotIssuance.blind_signature.is_not(None))
            .order_by(Ballot.id)
        )
        found += [
            Issued(
                petition_id=ballot.petition_id,
                purpose=Purpose.ballot,
                key_id=ballot.key_id,
                blind_signature=reply,
                spki=ballot.spki,
                ballot_id=ballot.id,
            )
            for ballot, reply in rows
            if reply is not None and ballot.state_at(moment) is BallotState.open
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
        petition.state is not PetitionState.open
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
