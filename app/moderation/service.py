"""Moderating petitions: a queue, an edit lock so two moderators do not collide, and recorded decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, aliased, joinedload

from app.audit import service as audit
from app.core.database import rows_changed
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.lifecycle import MODERATION_QUEUE_STATES, PetitionState
from app.models.petitions import Petition, PetitionEvent, RejectionReason
from app.petitions import notify
from app.petitions import service as petitions

S = PetitionState
DECISION_KINDS = ("opened", "rejected", "hidden", "restored")
REASON_MAX = 1000


def queue(*, db: Session) -> list[Petition]:
    return list(
        db.scalars(
            select(Petition)
            .where(Petition.state.in_([s.value for s in MODERATION_QUEUE_STATES]))
            .options(joinedload(Petition.category), joinedload(Petition.moderation_lock_by))
            .order_by(Petition.moderation_requested_at, Petition.id)
        )
    )


def recent_decisions(*, db: Session, limit: int = 20) -> list[tuple[PetitionEvent, Petition, User | None]]:
    """Who decided what: the moderation record."""
    moderator = aliased(User)
    rows = db.execute(
        select(PetitionEvent, Petition, moderator)
        .join(Petition, Petition.id == PetitionEvent.petition_id)
        .outerjoin(moderator, moderator.id == PetitionEvent.actor_id)
        .where(PetitionEvent.kind.in_(DECISION_KINDS), PetitionEvent.actor_id.is_not(None))
        .order_by(PetitionEvent.at.desc(), PetitionEvent.id.desc())
        .limit(limit)
    )
    return [(event, petition, user) for event, petition, user in rows]


def rejection_reasons(*, db: Session) -> list[RejectionReason]:
    return list(db.scalars(select(RejectionReason).order_by(RejectionReason.title)))


def rejection_reason(*, db: Session, code: str | None) -> RejectionReason:
    """The reason a moderator chose, or the form's message when none from the list was chosen."""
    reason = db.get(RejectionReason, code) if code else None
    if reason is None:
        raise InvalidInput(
            N_("Please correct the highlighted fields."), fields={"reason": N_("Choose a reason from the list.")}
        )
    return reason


def lock_holder(*, db: Session, petition: Petition, now: datetime) -> User | None:
    if petition.moderation_lock_by_id is None or petition.moderation_lock_until is None:
        return None
    if petition.moderation_lock_until <= now:
        return None
    return db.get(User, petition.moderation_lock_by_id)


def _refuse_if_locked_by_another(db: Session, petition: Petition, moderator: User, now: datetime) -> None:
    holder = lock_holder(db=db, petition=petition, now=now)
    if holder is not None and holder.id != moderator.id:
        raise Conflict(
            Message(
                N_("%(name)s is reviewing this petition until %(time)s UTC. Pick another one from the queue."),
                name=holder.display_name,
                time=f"{petition.moderation_lock_until:%H:%M}",
            )
        )


def claim(*, db: Session, rt: Runtime, petition: Petition, moderator: User) -> datetime:
    """Take the edit lock for a few minutes; refused while another moderator holds it."""
    now = rt.clock.now()
    if petition.state is not S.in_moderation:
        raise Conflict(N_("This petition is not waiting for moderation."))
    until = now + timedelta(minutes=rt.settings.moderation_lock_minutes)
    result = db.execute(
        update(Petition)
        .where(
            Petition.id == petition.id,
            or_(
                Petition.moderation_lock_by_id.is_(None),
                Petition.moderation_lock_until <= now,
                Petition.moderation_lock_by_id == moderator.id,
            ),
        )
        .values(moderation_lock_by_id=moderator.id, moderation_lock_until=until)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        db.refresh(petition)
        _refuse_if_locked_by_another(db, petition, moderator, now)
    petition.moderation_lock_by_id, petition.moderation_lock_until = moderator.id, until
    return until


def release(*, db: Session, petition: Petition, moderator: User) -> None:
    db.execute(
        update(Petition)
        .where(Petition.id == petition.id, Petition.moderation_lock_by_id == moderator.id)
        .values(moderation_lock_by_id=None, moderation_lock_until=None)
        .execution_options(synchronize_session=False)
    )


def approve(*, db: Session, rt: Runtime, petition: Petition, moderator: User) -> None:
    _refuse_if_locked_by_another(db, petition, moderator, rt.clock.now())
    if petition.state is not S.in_moderation:
        raise Conflict(N_("This petition is not waiting for moderation."))
    petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
    _audit(db, rt, moderator, "petition.opened", petition)


def _audit(db: Session, rt: Runtime, moderator: User, action: str, petition: Petition, **detail: object) -> None:
    audit.record(
        db=db,
        rt=rt,
        actor=moderator,
        action=action,
        subject=f"petition {petition.id}",
        detail={"title": petition.title, **detail},
    )


def reject(*, db: Session, rt: Runtime, petition: Petition, moderator: User, code: str, note: str | None) -> None:
    now = rt.clock.now()
    _refuse_if_locked_by_another(db, petition, moderator, now)
    reason = rejection_reason(db=db, code=code)
    note = (note or "").strip() or None
    if note and len(note) > REASON_MAX:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"note": Message(N_("Use at most %(length)s characters."), length=REASON_MAX)},
        )
    petitions.transition(
        db=db,
        petition=petition,
        target=S.rejected,
        now=now,
        actor=moderator,
        values={
            "rejection_code": reason.code,
            "rejection_note": note,
            "moderation_lock_by_id": None,
            "moderation_lock_until": None,
        },
        detail=reason.title,
    )
    petition.rejection = reason
    _audit(db, rt, moderator, "petition.rejected", petition, reason=reason.code, note=note)
    notify.tell_organizers(
        db=db, rt=rt, petition=petition, template="petition_rejected", context={"reason": reason, "note": note}
    )


def hide(*, db: Session, rt: Runtime, petition: Petition, moderator: User, reason: str) -> None:
    now = rt.clock.now()
    reason = reason.strip()
    if not reason:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"hidden_reason": N_("Say why: the organizers will read it.")},
        )
    if len(reason) > REASON_MAX:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"hidden_reason": Message(N_("Use at most %(length)s characters."), length=REASON_MAX)},
        )
    if petition.state is S.in_moderation:
        _refuse_if_locked_by_another(db, petition, moderator, now)
    petitions.transition(
        db=db,
        petition=petition,
        target=S.hidden,
        now=now,
        actor=moderator,
        values={"hidden_reason": reason, "moderation_lock_by_id": None, "moderation_lock_until": None},
        detail=reason,
        public=False,
    )
    _audit(db, rt, moderator, "petition.hidden", petition, reason=reason)
    notify.tell_organizers(db=db, rt=rt, petition=petition, template="petition_hidden", context={"reason": reason})


def restore(*, db: Session, rt: Runtime, petition: Petition, moderator: User) -> None:
    if petition.state is not S.hidden:
        raise Conflict(N_("Only a hidden petition can be restored."))
    now = rt.clock.now()
    if petition.opened_at is None:
        # Hidden before it ever opened: restoring it is opening it.
        petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
    else:
        expired = petition.deadline is not None and petition.deadline <= now
        target = S.closed if petition.closed_at is not None or expired else S.open
        petitions.transition(
            db=db,
            petition=petition,
            target=target,
            now=now,
            actor=moderator,
            values={"hidden_reason": None, "closed_at": petition.closed_at or (now if target is S.closed else None)},
        )
    petitions.record_event(db=db, petition=petition, kind="restored", at=now, actor=moderator, public=False)
    _audit(db, rt, moderator, "petition.restored", petition)
