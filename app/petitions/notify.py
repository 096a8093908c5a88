"""Who hears about what happens to a petition. Mail goes through the outbox, in the caller's transaction;
events for a whole audience are announced, and fanned out by the worker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.runtime import Runtime
from app.mail import service as mail
from app.mail import unsubscribe
from app.models.accounts import Role, RoleGrant, User
from app.models.mail_kinds import kind_of
from app.models.petitions import Follow, Notification, Petition, PetitionOrganizer
from app.models.signatures import Signature, Visibility


def _send(
    *,
    db: Session,
    rt: Runtime,
    users: Iterable[User],
    template: str,
    petition: Petition,
    context: Mapping[str, Any] | None = None,
) -> int:
    """Mail each of `users` who has not turned this kind of mail about this petition off, with the link that does."""
    sent = 0
    base_url = rt.settings.base_url.rstrip("/")
    kind = kind_of(template)
    users = list(users)
    stopped = (
        unsubscribe.turned_off(db=db, kind=kind, petition_id=petition.id, user_ids=[user.id for user in users])
        if kind
        else set()
    )
    for user in users:
        if user.id in stopped:
            continue
        mail.queue(
            db=db,
            templates=rt.templates,
            to_address=user.notification_address,
            template=template,
            now=rt.clock.now(),
            context={
                "user": user,
                "petition": petition,
                "base_url": base_url,
                "petition_url": f"{base_url}/petitions/{petition.id}",
                **(context or {}),
            },
            unsubscribe_url=unsubscribe.link(rt=rt, user_id=user.id, kind=kind, petition_id=petition.id)
            if kind
            else None,
            about=petition.title,
            account_url=f"{base_url}/account",
        )
        sent += 1
    return sent


def organizers(db: Session, petition: Petition) -> list[User]:
    return list(
        db.scalars(
            select(User)
            .join(PetitionOrganizer, PetitionOrganizer.user_id == User.id)
            .where(PetitionOrganizer.petition_id == petition.id)
            .order_by(User.id)
        )
    )


def responders(db: Session) -> list[User]:
    return list(
        db.scalars(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(RoleGrant.role == Role.responder)
            .order_by(User.id)
        )
    )


def audience_after(
    db: Session, petition: Petition, *, all_named_signers: bool, after: int, limit: int, with_organizers: bool = False
) -> list[int]:
    """The next `limit` account ids above `after` among followers and counted named signers (those who opted
    in, or all of them for a change to the text), and the organizers when `with_organizers`, each once, in order.

    Two index range scans with a limit (signatures by (petition, account), follows by (petition, user)), so each
    batch of a fan-out costs the same at a million signers as at ten. Anonymous signers are reached only as
    followers: nothing links the two.
    """
    signers = (
        select(Signature.account_id)
        .where(
            Signature.petition_id == petition.id,
            Signature.account_id > after,
            Signature.visibility != Visibility.anonymous,
            Signature.invalidation_id.is_(None),
        )
        .order_by(Signature.account_id)
        .limit(limit)
    )
    if not all_named_signers:
        signers = signers.where(Signature.notify_updates.is_(True))
    followers = (
        select(Follow.user_id)
        .where(Follow.petition_id == petition.id, Follow.user_id > after)
        .order_by(Follow.user_id)
        .limit(limit)
    )
    audience = {*db.scalars(signers), *db.scalars(followers)}
    if with_organizers:
        audience.update(
            db.scalars(
                select(PetitionOrganizer.user_id)
                .where(PetitionOrganizer.petition_id == petition.id, PetitionOrganizer.user_id > after)
                .order_by(PetitionOrganizer.user_id)
                .limit(limit)
            )
        )
    return sorted(audience)[:limit]


def tell_organizers(
    *, db: Session, rt: Runtime, petition: Petition, template: str, context: Mapping[str, Any] | None = None
) -> int:
    return _send(db=db, rt=rt, users=organizers(db, petition), template=template, petition=petition, context=context)


def tell_responders(
    *, db: Session, rt: Runtime, petition: Petition, template: str, context: Mapping[str, Any] | None = None
) -> int:
    return _send(db=db, rt=rt, users=responders(db), template=template, petition=petition, context=context)


def announce(*, db: Session, petition: Petition, template: str, subject_id: int, now: datetime) -> None:
    """Queue an event for the petition's audience; the worker fans it out in batches, each recipient once
    (app/responses/delivery.py), so the request that caused it stays short however many signed."""
    db.add(Notification(petition_id=petition.id, template=template, subject_id=subject_id, created_at=now))


def send(
    *,
    db: Session,
    rt: Runtime,
    users: Iterable[User],
    template: str,
    petition: Petition,
    context: Mapping[str, Any] | None = None,
) -> int:
    return _send(db=db, rt=rt, users=users, template=template, petition=petition, context=context)


def tell(
    *, db: Session, rt: Runtime, user: User, petition: Petition, template: str, context: Mapping[str, Any] | None = None
) -> int:
    return _send(db=db, rt=rt, users=[user], template=template, petition=petition, context=context)
