"""Threshold crossings: each fires exactly once, in the transaction whose signature crossed it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.database import rows_changed
from app.core.runtime import Runtime
from app.models.petitions import Petition
from app.organization import service as organization
from app.petitions import notify
from app.petitions.service import record_event

# What `crossing_due` reads: the counter's UPDATE returns these, so that signing needs no other read.
CROSSING_COLUMNS = (
    "response_threshold",
    "response_threshold_reached_at",
    "escalation_threshold",
    "escalation_threshold_reached_at",
)


def crossing_due(petition: Any, count: int) -> bool:
    """Whether `count` reaches a threshold not yet marked reached (on a petition, or a row of CROSSING_COLUMNS)."""
    return any(
        threshold and count >= threshold and reached is None
        for threshold, reached in (
            (petition.response_threshold, petition.response_threshold_reached_at),
            (petition.escalation_threshold, petition.escalation_threshold_reached_at),
        )
    )


def record_crossings(*, db: Session, rt: Runtime, petition: Petition, count: int, now: datetime) -> list[str]:
    """Mark thresholds that `count` reaches; returns the kinds that fired in this call."""
    fired: list[str] = []
    # Thresholds already reached when the petition was loaded need no statement (the hot path after crossing);
    # the compare-and-set below still decides between requests that loaded it before the crossing.
    if (
        petition.response_threshold
        and count >= petition.response_threshold
        and petition.response_threshold_reached_at is None
    ):
        due = now + timedelta(days=organization.current(db=db, rt=rt).response_days)
        # The IS NULL guard makes the crossing a compare-and-set: of many signatures arriving at once,
        # exactly one updates the row.
        won = (
            rows_changed(
                db.execute(
                    update(Petition)
                    .where(Petition.id == petition.id, Petition.response_threshold_reached_at.is_(None))
                    .values(response_threshold_reached_at=now, response_due_at=due)
                    .execution_options(synchronize_session=False)
                )
            )
            == 1
        )
        if won:
            petition.response_threshold_reached_at, petition.response_due_at = now, due
            record_event(
                db=db,
                petition=petition,
                kind="response_threshold_reached",
                at=now,
                detail=f"{petition.response_threshold} signatures",
            )
            record_event(
                db=db,
                petition=petition,
                kind="response_due",
                at=now,
                detail=f"Leadership is due to respond by {due:%d %B %Y}.",
            )
            notify.tell_organizers(
                db=db,
                rt=rt,
                petition=petition,
                template="threshold_reached",
                context={"threshold": petition.response_threshold, "due": due},
            )
            notify.tell_responders(
                db=db,
                rt=rt,
                petition=petition,
                template="response_due",
                context={"threshold": petition.response_threshold, "due": due},
            )
            fired.append("response")
    if (
        petition.escalation_threshold
        and count >= petition.escalation_threshold
        and petition.escalation_threshold_reached_at is None
    ):
        won = (
            rows_changed(
                db.execute(
                    update(Petition)
                    .where(Petition.id == petition.id, Petition.escalation_threshold_reached_at.is_(None))
                    .values(escalation_threshold_reached_at=now)
                    .execution_options(synchronize_session=False)
                )
            )
            == 1
        )
        if won:
            petition.escalation_threshold_reached_at = now
            record_event(
                db=db,
                petition=petition,
                kind="escalation_threshold_reached",
                at=now,
                detail=f"{petition.escalation_threshold} signatures",
            )
            notify.tell_responders(
                db=db,
                rt=rt,
                petition=petition,
                template="escalation_reached",
                context={"threshold": petition.escalation_threshold},
            )
            fired.append("escalation")
    return fired
