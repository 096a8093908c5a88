"""Signing: one verified person, one signature, counted with one atomic statement."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.anonymous import service as anonymous
from app.core.database import insert_for, table_of
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as signature_log
from app.models.accounts import User
from app.models.lifecycle import SIGNABLE_STATES, PetitionState
from app.models.petitions import Petition
from app.models.signatures import GroupKind, Signature, Visibility
from app.organization import eligibility
from app.petitions import service as petitions
from app.petitions.thresholds import CROSSING_COLUMNS, crossing_due, record_crossings
from app.signatures import groups

NAMED_VISIBILITIES = (Visibility.public, Visibility.organizers)


@dataclass(frozen=True)
class SignerName:
    name: str
    visibility: Visibility


# The busiest write path's statements, built once: Core statements on the tables with bound parameters, so
# a request neither builds a statement nor computes its cache key, and the ORM's unit of work stays out of it.
_signatures, _petitions = table_of(Signature), table_of(Petition)
_INSERT_SQLITE = (
    insert_for("sqlite", _signatures)
    .on_conflict_do_nothing(index_elements=["petition_id", "account_id"])
    .returning(_signatures.c.id)
)
_TAKES_SIGNATURES = (
    _petitions.c.state == PetitionState.open.value,
    or_(_petitions.c.deadline.is_(None), _petitions.c.deadline > bindparam("now")),
)
_COUNTED = (_petitions.c.signature_count, *(_petitions.c[name] for name in CROSSING_COLUMNS))
_COUNT_IN = (
    update(_petitions)
    .where(_petitions.c.id == bindparam("petition_id"), *_TAKES_SIGNATURES)
    .values(signature_count=_petitions.c.signature_count + 1)
    .returning(*_COUNTED)
)
# PostgreSQL does both in one statement (a data-modifying WITH): one round trip fewer on the busiest path. It
# returns no row when the signature was already there or the petition no longer takes signatures.
_inserted = (
    insert_for("postgresql", _signatures)
    .values({column.key: bindparam(f"new_{column.key}") for column in _signatures.columns})
    .on_conflict_do_nothing(index_elements=["petition_id", "account_id"])
    .returning(_signatures.c.petition_id)
    .cte("inserted")
)
_INSERT_AND_COUNT_IN = (
    update(_petitions)
    .where(_petitions.c.id == _inserted.c.petition_id, *_TAKES_SIGNATURES)
    .values(signature_count=_petitions.c.signature_count + 1)
    .returning(*_COUNTED)
)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def name_context(petition_id: int) -> str:
    return f"signature-name:{petition_id}"


def own_signature(*, db: Session, petition: Petition, user: User | None) -> Signature | None:
    if user is None:
        return None
    return db.scalar(select(Signature).where(Signature.petition_id == petition.id, Signature.account_id == user.id))


def _refuse_unless_signable(petition: Petition) -> None:
    if petition.state not in SIGNABLE_STATES:
        if petition.state is PetitionState.closed:
            raise Conflict(N_("This petition has closed; it no longer takes signatures."))
        raise Conflict(N_("This petition is not open for signatures."))


@dataclass(frozen=True)
class Signed:
    signature: Signature  # transient: the row is written; this is the caller's view of it
    signature_count: int
    forfeited: bool = False  # the signer gave up signing this petition anonymously (their token was not here)


def sign(
    *,
    db: Session,
    rt: Runtime,
    petition_id: int,
    user: User,
    visibility: str,
    notify_updates: bool,
    department: str | None = None,
    location: str | None = None,
    token: tuple[bytes, bytes] | None = None,
    forfeit: bool = False,
) -> Signed:
    """Write the signature, then count it in: the counter's guarded UPDATE is the last statement.

    That UPDATE locks the petition's row until the commit, and every signer of the petition queues on that
    lock, so as little as possible happens after it: the route commits in the handler's own thread as soon as the
    handler returns (app/core/routing.py), and the sign handlers do nothing after this but build a redirect or a
    small JSON answer. Its WHERE clause is also the check that the petition takes signatures (open, deadline not
    passed); when it matches nothing, the whole request rolls back and the petition is loaded to say why.

    `forfeit`: the signer was issued the petition's anonymous-signing token, does not have it here, and gives up
    signing anonymously (app/anonymous/service.py). The forfeit is written in this transaction, so a refused
    signature forfeits nothing.
    """
    page_changed(db, petition_id, count_only=True)  # the count and the public names; the page copies serve on
    if visibility not in NAMED_VISIBILITIES:
        if visibility == Visibility.anonymous:
            raise InvalidInput(
                N_("Please correct the highlighted fields."),
                fields={"visibility": N_("Anonymous signing is not available on this petition.")},
            )
        raise InvalidInput(
            N_("Please correct the highlighted fields."), fields={"visibility": N_("Choose who may see your name.")}
        )
    known = _signable(db=db, rt=rt, petition_id=petition_id)
    if known is None:
        petition = petitions.get_for_signing(db=db, rt=rt, petition_id=petition_id, user=user)
        _refuse_unless_signable(petition)
        known = (petition.collect_attributes, petition.allow_anonymous)
    collects, allows_anonymity = known
    eligibility.require_eligible(db=db, rt=rt, user=user)
    forfeited = False
    if allows_anonymity:
        # A member who was issued this petition's token signs with it, so it cannot be used anonymously too.
        forfeited = anonymous.redeem_named(
            db=db, rt=rt, petition_id=petition_id, user=user, token=token, forfeit=forfeit
        )
        if forfeited:
            page_changed(db, petition_id)  # a forfeit narrows the anonymity set the page shows
    department_id = location_id = None
    if collects:
        department_id = groups.choose(db=db, kind=GroupKind.department, raw=department)
        location_id = groups.choose(db=db, kind=GroupKind.location, raw=location)
    rt.limiter.hit(action="sign", subject=f"account:{user.id}", rule=rt.settings.rate_limit_sign)
    now = rt.clock.now()
    columns = {
        "id": secrets.token_hex(16),
        "petition_id": petition_id,
        "account_id": user.id,
        "visibility": visibility,
        "notify_updates": notify_updates,
        "signed_hour": _hour(now),
        "public_name": user.display_name if visibility == Visibility.public else None,
        "sealed_name": rt.sealer.seal(user.display_name, context=name_context(petition_id))
        if visibility == Visibility.organizers
        else None,
        "department_id": department_id,
        "location_id": location_id,
        "invalidation_id": None,
        "token_message": None,
        "token_signature": None,
        "log_index": None,
    }
    signature = Signature(**columns)  # transient, the caller's view of the row: built before the row is locked
    # ON CONFLICT DO NOTHING: the unique constraint decides, without a savepoint round trip.
    if db.get_bind().dialect.name == "postgresql":
        counted = db.execute(
            _INSERT_AND_COUNT_IN, {**{f"new_{key}": value for key, value in columns.items()}, "now": now}
        ).one_or_none()
    elif db.execute(_INSERT_SQLITE, columns).scalar_one_or_none() is None:
        raise Conflict(N_("You have already signed this petition."))
    else:
        counted = db.execute(_COUNT_IN, {"petition_id": petition_id, "now": now}).one_or_none()
    if counted is None:  # the request rolls back, signature included; say why
        rt.cache.forget(_signable_key(petition_id))
        # keep_closing=False: this transaction holds the refused signature's row (and any forfeit), which must
        # not stand; the next reader closes the petition.
        _refuse_unless_signable(
            petitions.get_for_signing(db=db, rt=rt, petition_id=petition_id, user=user, keep_closing=False)
        )
        raise Conflict(N_("You have already signed this petition."))  # still open: the insert found a signature
    count = counted.signature_count
    loaded = db.identity_map.get(identity_key(Petition, petition_id))
    if loaded is not None:  # the caller loaded it: keep its count current
        set_committed_value(loaded, "signature_count", count)
    if crossing_due(counted, count):
        record_crossings(db=db, rt=rt, petition=loaded or db.get_one(Petition, petition_id), count=count, now=now)
    return Signed(signature=signature, signature_count=count, forfeited=forfeited)


def _signable_key(petition_id: int) -> str:
    return f"signable-petition:{petition_id}"


# Only what cannot change while a petition is open is remembered; whether it is still open, the counter's
# guarded UPDATE decides in the signing transaction itself.
SIGNABLE_TTL = 300.0
_SIGNABLE = select(_petitions.c.collect_attributes, _petitions.c.allow_anonymous).where(
    _petitions.c.id == bindparam("petition_id"), *_TAKES_SIGNATURES
)


def _signable(*, db: Session, rt: Runtime, petition_id: int) -> tuple[bool, bool] | None:
    """For an open petition: whether it asks signers for their department and location, and whether it allows
    anonymity (its members then sign with their token). None when it is not open."""
    key = _signable_key(petition_id)

    def load() -> tuple[bool, bool] | None:
        row = db.execute(_SIGNABLE, {"petition_id": petition_id, "now": rt.clock.now()}).one_or_none()
        return None if row is None else (row.collect_attributes, row.allow_anonymous)

    known = rt.cache.get(key, load, ttl=SIGNABLE_TTL)
    if known is None:
        rt.cache.forget(key)  # not open (yet): ask again next time
    return known


def withdraw(*, db: Session, petition: Petition, user: User) -> None:
    """Take one's named signature out of the count. A token it spent stays spent (withdrawing then signing
    anonymously would tie the two together, and free a second vote): the member may sign again with a name."""
    page_changed(db, petition.id)
    if petition.state not in SIGNABLE_STATES:
        raise Conflict(N_("Signatures can be withdrawn only while the petition is open."))
    # A voided signature is not the signer's to withdraw: it is already not counted, and it stays on record.
    removed_rows = db.execute(
        delete(Signature)
        .where(
            Signature.petition_id == petition.id, Signature.account_id == user.id, Signature.invalidation_id.is_(None)
        )
        .returning(Signature.log_index)
    ).all()
    if not removed_rows:
        if own_signature(db=db, petition=petition, user=user) is not None:
            raise Conflict(N_("Your signature was voided by the moderators: it is not counted, and stays on record."))
        raise NotFound(N_("You have not signed this petition."))
    anonymous.burn_on_withdrawal(db=db, petition_id=petition.id, user=user)
    for (log_index,) in removed_rows:
        signature_log.withdrawn(db=db, petition_id=petition.id, log_index=log_index)
    set_committed_value(
        petition,
        "signature_count",
        db.execute(
            update(Petition)
            .where(Petition.id == petition.id)
            .values(signature_count=Petition.signature_count - 1, withdrawal_count=Petition.withdrawal_count + 1)
            .returning(Petition.signature_count)
            .execution_options(synchronize_session=False)
        ).scalar_one(),
    )


def hide_name(*, db: Session, rt: Runtime, petition: Petition, user: User) -> None:
    """Move a public signature to organizers-only (the other way round would expose a name after the fact)."""
    page_changed(db, petition.id)
    signature = own_signature(db=db, petition=petition, user=user)
    if signature is None:
        raise NotFound(N_("You have not signed this petition."))
    if signature.visibility != Visibility.public:
        raise Conflict(N_("Your name is already visible only to the organizers."))
    signature.sealed_name = rt.sealer.seal(
        signature.public_name or user.display_name, context=name_context(petition.id)
    )
    signature.public_name = None
    signature.visibility = Visibility.organizers
    db.flush()


def public_names(*, db: Session, petition: Petition, limit: int = 20) -> list[str]:
    return list(
        db.scalars(
            select(Signature.public_name)
            .where(
                Signature.petition_id == petition.id,
                Signature.visibility == Visibility.public,
                Signature.invalidation_id.is_(None),
            )
            .order_by(Signature.signed_hour.desc(), Signature.public_name)
            .limit(limit)
        )
    )


def shown_names(petition_id: int) -> tuple[Any, ...]:
    """The WHERE clause of a petition's names: counted signatures whose signer chose to show a name, not erased
    after the retention period. Never anonymous signers. On the table's columns, for Core statements too."""
    table = table_of(Signature)
    return (
        table.c.petition_id == petition_id,
        table.c.invalidation_id.is_(None),
        table.c.visibility.in_([visibility.value for visibility in NAMED_VISIBILITIES]),
        or_(table.c.public_name.is_not(None), table.c.sealed_name.is_not(None)),
    )


def names_for_organizers(
    *, db: Session, rt: Runtime, petition: Petition, limit: int = 200, offset: int = 0
) -> list[SignerName]:
    """Names signers chose to show the public or the organizers; never anonymous signers."""
    rows = db.execute(
        select(Signature.visibility, Signature.public_name, Signature.sealed_name)
        .where(*shown_names(petition.id))
        .order_by(Signature.signed_hour.desc(), Signature.id)
        .limit(limit)
        .offset(offset)
    )
    open_name = rt.sealer.opener(context=name_context(petition.id))
    return [
        SignerName(
            name=(public_name if visibility == Visibility.public or sealed_name is None else open_name(sealed_name))
            or "",
            visibility=Visibility(visibility),
        )
        for visibility, public_name, sealed_name in rows
    ]


def my_signatures(*, db: Session, user: User) -> list[tuple[Signature, Petition]]:
    rows = db.execute(
        select(Signature, Petition)
        .join(Petition, Petition.id == Signature.petition_id)
        .where(Signature.account_id == user.id)
        .order_by(Signature.signed_hour.desc())
    )
    return [(signature, petition) for signature, petition in rows]
