"""Signing: one verified person, one signature, counted with one atomic statement."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.models import User
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.database import upsert_insert
from app.core.runtime import Runtime
from app.petitions.lifecycle import SIGNABLE_STATES, PetitionState
from app.petitions.models import Petition
from app.petitions.thresholds import record_crossings
from app.signatures import eligibility, groups
from app.signatures.models import GroupKind, Signature, Visibility

NAMED_VISIBILITIES = (Visibility.public, Visibility.organizers)


@dataclass(frozen=True)
class SignerName:
    name: str
    visibility: Visibility


def _columns(signature: Signature) -> dict[str, object]:
    return {column.key: getattr(signature, column.key) for column in Signature.__table__.columns}


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def name_context(petition_id: int) -> str:
    return f"signature-name:{petition_id}"


def own_signature(*, db: Session, petition: Petition, user: User | None) -> Signature | None:
    if user is None:
        return None
    return db.scalar(select(Signature).where(Signature.petition_id == petition.id, Signature.account_id == user.id))


def _refuse_unless_signable(petition: Petition) -> None:
    if petition.state_enum not in SIGNABLE_STATES:
        if petition.state_enum is PetitionState.closed:
            raise Conflict("This petition has closed; it no longer takes signatures.")
        raise Conflict("This petition is not open for signatures.")


def sign(*, db: Session, rt: Runtime, petition: Petition, user: User, visibility: str,
         notify_updates: bool, department: str | None = None, location: str | None = None) -> Signature:
    if visibility not in NAMED_VISIBILITIES:
        if visibility == Visibility.anonymous:
            raise InvalidInput("Please correct the highlighted fields.",
                               fields={"visibility": "Anonymous signing is not available on this petition."})
        raise InvalidInput("Please correct the highlighted fields.",
                           fields={"visibility": "Choose who may see your name."})
    _refuse_unless_signable(petition)
    eligibility.require_eligible(db=db, rt=rt, user=user)
    department_id = location_id = None
    if petition.collect_attributes:
        department_id = groups.choose(db=db, kind=GroupKind.department, raw=department)
        location_id = groups.choose(db=db, kind=GroupKind.location, raw=location)
    rt.limiter.hit(action="sign", subject=f"account:{user.id}", rule=rt.settings.rate_limit_sign)
    now = rt.clock.now()
    signature = Signature(id=secrets.token_hex(16), petition_id=petition.id, account_id=user.id,
                          visibility=visibility, notify_updates=notify_updates, signed_hour=_hour(now),
                          public_name=user.display_name if visibility == Visibility.public else None,
                          sealed_name=rt.sealer.seal(user.display_name, context=name_context(petition.id))
                          if visibility == Visibility.organizers else None,
                          department_id=department_id, location_id=location_id)
    # ON CONFLICT DO NOTHING: the unique constraint decides, without a savepoint round trip. Both statements
    # are Core (on the tables, not the mapped classes): this is the busiest write path, and the ORM's bulk
    # machinery adds nothing here.
    signatures_table = Signature.__table__
    inserted = db.execute(upsert_insert(db, signatures_table).values(**_columns(signature))
                          .on_conflict_do_nothing(index_elements=["petition_id", "account_id"])
                          .returning(signatures_table.c.id)).scalar_one_or_none()
    if inserted is None:
        raise Conflict("You have already signed this petition.")
    petitions_table = Petition.__table__
    count = db.execute(update(petitions_table)
                       .where(petitions_table.c.id == petition.id, petitions_table.c.state == PetitionState.open)
                       .values(signature_count=petitions_table.c.signature_count + 1)
                       .returning(petitions_table.c.signature_count)).scalar_one_or_none()
    if count is None:
        raise Conflict("This petition closed a moment ago; your signature was not added.")
    set_committed_value(petition, "signature_count", count)
    record_crossings(db=db, rt=rt, petition=petition, count=count, now=now)
    return signature


def withdraw(*, db: Session, petition: Petition, user: User) -> None:
    if petition.state_enum not in SIGNABLE_STATES:
        raise Conflict("Signatures can be withdrawn only while the petition is open.")
    # A voided signature is not the signer's to withdraw: it is already not counted, and it stays on record.
    removed = db.execute(delete(Signature).where(Signature.petition_id == petition.id, Signature.account_id == user.id,
                                                 Signature.invalidation_id.is_(None))).rowcount
    if removed == 0:
        if own_signature(db=db, petition=petition, user=user) is not None:
            raise Conflict("Your signature was voided by the moderators: it is not counted, and stays on record.")
        raise NotFound("You have not signed this petition.")
    set_committed_value(petition, "signature_count", db.execute(
        update(Petition).where(Petition.id == petition.id)
        .values(signature_count=Petition.signature_count - 1, withdrawal_count=Petition.withdrawal_count + 1)
        .returning(Petition.signature_count).execution_options(synchronize_session=False)).scalar_one())


def hide_name(*, db: Session, rt: Runtime, petition: Petition, user: User) -> None:
    """Move a public signature to organizers-only (the other way round would expose a name after the fact)."""
    signature = own_signature(db=db, petition=petition, user=user)
    if signature is None:
        raise NotFound("You have not signed this petition.")
    if signature.visibility != Visibility.public:
        raise Conflict("Your name is already visible only to the organizers.")
    signature.sealed_name = rt.sealer.seal(signature.public_name or user.display_name,
                                        context=name_context(petition.id))
    signature.public_name = None
    signature.visibility = Visibility.organizers
    db.flush()


def public_names(*, db: Session, petition: Petition, limit: int = 20) -> list[str]:
    return list(db.scalars(select(Signature.public_name)
                           .where(Signature.petition_id == petition.id, Signature.visibility == Visibility.public,
                                  Signature.invalidation_id.is_(None))
                           .order_by(Signature.signed_hour.desc(), Signature.public_name).limit(limit)))


def names_for_organizers(*, db: Session, rt: Runtime, petition: Petition, limit: int = 200,
                         offset: int = 0) -> list[SignerName]:
    """Names signers chose to show the public or the organizers; never anonymous signers."""
    rows = db.execute(select(Signature.visibility, Signature.public_name, Signature.sealed_name)
                      .where(Signature.petition_id == petition.id, Signature.invalidation_id.is_(None),
                             Signature.visibility.in_([v.value for v in NAMED_VISIBILITIES]))
                      .order_by(Signature.signed_hour.desc(), Signature.id).limit(limit).offset(offset))
    names = []
    for visibility, public_name, sealed_name in rows:
        if public_name is None and sealed_name is None:
            continue  # erased after the retention period
        name = public_name if visibility == Visibility.public else rt.sealer.open(sealed_name,
                                                                               context=name_context(petition.id))
        names.append(SignerName(name=name or "", visibility=Visibility(visibility)))
    return names


def my_signatures(*, db: Session, user: User) -> list[tuple[Signature, Petition]]:
    rows = db.execute(select(Signature, Petition).join(Petition, Petition.id == Signature.petition_id)
                      .where(Signature.account_id == user.id).order_by(Signature.signed_hour.desc()))
    return [(signature, petition) for signature, petition in rows]
