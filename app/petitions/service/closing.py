"""Closing a petition: by its organizers, on read once its deadline passed (`close_if_expired`, called by
`reading.get_readable` only), or by the periodic job.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.database import on_replica
from app.core.errors import Conflict
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.petitions import Petition
from app.petitions import notify
from app.petitions.service.events import S, transition


def close(*, db: Session, rt: Runtime, petition: Petition, actor: User | None, reason: str) -> None:
    now = rt.clock.now()
    transition(
        db=db, petition=petition, target=S.closed, now=now, actor=actor, values={"closed_at": now}, detail=reason
    )
    notify.tell_organizers(db=db, rt=rt, petition=petition, template="petition_closed", context={"reason": reason})


def close_if_expired(*, db: Session, rt: Runtime, petition: Petition) -> bool:
    """The check on read: a petition past its deadline is closed before anyone sees it open (on the primary: a read
    replica refuses writes, and the replica sees the closing moments later)."""
    if on_replica(db):
        return False
    if petition.state is S.open and petition.deadline is not None and petition.deadline <= rt.clock.now():
        try:
            close(db=db, rt=rt, petition=petition, actor=None, reason="The deadline passed.")
        except Conflict:
            db.refresh(petition)  # another request closed it first
        return True
    return False


def close_expired(*, db: Session, rt: Runtime, limit: int = 500) -> int:
    """The periodic job: close every open petition whose deadline has passed."""
    due = db.scalars(
        select(Petition)
        .where(Petition.state == S.open, Petition.deadline <= rt.clock.now())
        .order_by(Petition.deadline)
        .limit(limit)
    )
    return sum(1 for petition in list(due) if close_if_expired(db=db, rt=rt, petition=petition))
