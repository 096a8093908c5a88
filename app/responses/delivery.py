"""Telling a petition's audience about updates, corrections and responses, in batches by the worker, each
recipient once per event (a delivery row per person). A petition with a million signers gets its mail queued
over many short transactions, not in the organizer's request."""

from __future__ import annotations

import logging

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.lifecycle import VISIBLE_STATES
from app.models.petitions import Delivery, Notification, Petition, PetitionUpdate, PetitionVersion
from app.models.responses import (
    COMMITMENT_LABELS,
    RESPONSE_LABELS,
    Commitment,
    CommitmentStatus,
    CommitmentUpdate,
    PetitionResponse,
    ResponseStatus,
)
from app.petitions import notify
from app.responses import service

BATCH = 500
logger = logging.getLogger("undersigned.jobs")
REMINDER_DAYS_BEFORE = 3


def _undelivered(db: Session, event_key: str, candidates: Select[int], limit: int) -> list[User]:
    delivered = exists().where(Delivery.event_key == event_key, Delivery.user_id == User.id)
    return list(db.scalars(select(User).where(User.id.in_(candidates), ~delivered).order_by(User.id).limit(limit)))


def _record(db: Session, rt: Runtime, event_key: str, users: list[User]) -> None:
    # Tied to an account: the hour is all anyone needs of when it was told.
    now = to_the_hour(rt.clock.now())
    db.add_all(Delivery(event_key=event_key, user_id=user.id, created_at=now) for user in users)


# Events whose audience is every named signer (and followers), not only those who asked for updates: a change
# to the text they signed.
ALL_NAMED_SIGNERS = frozenset({"petition_corrected"})
# Events every organizer hears of too, following or not: leadership's answer to what they organized.
ORGANIZERS_TOO = frozenset({"response_posted", "commitment_updated"})


def _context(db: Session, notification: Notification) -> dict[str, object]:
    if notification.template == "petition_update":
        return {"update": db.get(PetitionUpdate, notification.subject_id)}
    if notification.template == "petition_corrected":
        version = db.get(PetitionVersion, notification.subject_id)
        return {"note": version.note if version else "", "version": version.number if version else ""}
    if notification.template == "response_posted":
        response = db.get(PetitionResponse, notification.subject_id)
        return {
            "response": response,
            "status_label": RESPONSE_LABELS[ResponseStatus(response.status)] if response else "",
        }
    commitment = db.get(Commitment, notification.subject_id)
    # The change this event announced: the latest update up to it (a later one has an event of its own).
    change = db.scalar(
        select(CommitmentUpdate)
        .where(
            CommitmentUpdate.commitment_id == notification.subject_id,
            CommitmentUpdate.created_at <= notification.created_at,
        )
        .order_by(CommitmentUpdate.created_at.desc(), CommitmentUpdate.id.desc())
        .limit(1)
    )
    status = change.status if change else commitment.status if commitment else None
    return {
        "commitment": commitment,
        "note": change.note if change else None,
        "status_label": COMMITMENT_LABELS[CommitmentStatus(status)] if status else "",
    }


def deliver_notifications(*, sessions: sessionmaker[Session], rt: Runtime, batch: int = BATCH) -> int:
    """Queue mail for pending events, one committed batch at a time; returns how many messages were queued.

    Events of a petition that moderators hid wait until it is shown again (an update is not mailed about a
    petition nobody may read). An event whose batch fails is logged and set aside, so it cannot hold back
    every other mail behind it.
    """
    queued = 0
    while True:
        failed: tuple[int, str] | None = None
        with sessions.begin() as db:
            notification = db.scalar(
                select(Notification)
                .join(Petition, Petition.id == Notification.petition_id)
                .where(Notification.done_at.is_(None), Petition.state.in_(VISIBLE_STATES))
                .order_by(Notification.id)
                .limit(1)
                .with_for_update(of=Notification, skip_locked=True)
            )
            if notification is None:
                return queued
            try:
                with db.begin_nested():
                    sent = _deliver_batch(db, rt, notification, batch)
            except Exception as error:  # noqa: BLE001 (one event's failure must not stop all mail)
                failed = (notification.id, type(error).__name__)
                notification.done_at = rt.clock.now()
            else:
                queued += sent
        if failed:
            logger.error(
                "an announcement could not be delivered; set aside",
                extra={"notification": failed[0], "error_type": failed[1]},
            )


def _deliver_batch(db: Session, rt: Runtime, notification: Notification, batch: int) -> int:
    petition = db.get_one(Petition, notification.petition_id)
    event_key = f"notification:{notification.id}"
    # Recipients are taken in account order; the last one recorded is where the next batch starts.
    after = db.scalar(select(func.max(Delivery.user_id)).where(Delivery.event_key == event_key)) or 0
    ids = notify.audience_after(
        db,
        petition,
        all_named_signers=notification.template in ALL_NAMED_SIGNERS,
        after=after,
        limit=batch,
        with_organizers=notification.template in ORGANIZERS_TOO,
    )
    if not ids:
        notification.done_at = rt.clock.now()
        return 0
    users = list(db.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))
    _record(db, rt, event_key, users)
    return notify.send(
        db=db, rt=rt, users=users, template=notification.template, petition=petition, context=_context(db, notification)
    )


def send_reminders(*, sessions: sessionmaker[Session], rt: Runtime) -> int:
    """Remind responders before a response falls due and when it does: once per petition and moment."""
    queued = 0
    with sessions.begin() as db:
        responder_ids = select(User.id).where(User.id.in_([user.id for user in notify.responders(db)]))
        for petition, kind in service.reminder_candidates(db=db, now=rt.clock.now(), days_before=REMINDER_DAYS_BEFORE):
            event_key = f"reminder:{petition.id}:{kind}"
            users = _undelivered(db, event_key, responder_ids, BATCH)
            if users:
                _record(db, rt, event_key, users)
                queued += notify.send(
                    db=db,
                    rt=rt,
                    users=users,
                    template=f"reminder_{kind}",
                    petition=petition,
                    context={"due": petition.response_due_at},
                )
    return queued
