"""A petition's state changes and its timeline: the one place a state changes (`transition`, a compare-and-set
UPDATE that refuses illegal moves, so two requests racing for the same move cannot both make it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core.database import rows_changed
from app.core.errors import Conflict
from app.core.i18n import N_, Message
from app.core.versions import page_changed
from app.models.accounts import User
from app.models.lifecycle import LABELS, PetitionState, can_transition
from app.models.petitions import (
    Petition,
    PetitionEvent,
)
from app.petitions import issuing_keys

S = PetitionState


EVENT_FOR_STATE = {
    S.gathering_sponsors: "sent_to_sponsors",
    S.in_moderation: "sent_to_moderation",
    S.open: "opened",
    S.closed: "closed",
    S.rejected: "rejected",
    S.hidden: "hidden",
    S.archived: "archived",
}


def record_event(
    *,
    db: Session,
    petition: Petition,
    kind: str,
    at: datetime,
    actor: User | None = None,
    detail: str | None = None,
    public: bool = True,
) -> None:
    page_changed(db, petition.id)
    db.add(
        PetitionEvent(
            petition_id=petition.id,
            kind=kind,
            at=at,
            actor_id=actor.id if actor else None,
            detail=detail,
            public=public,
        )
    )


def transition(
    *,
    db: Session,
    petition: Petition,
    target: PetitionState,
    now: datetime,
    actor: User | None = None,
    values: Mapping[str, Any] | None = None,
    detail: str | None = None,
    public: bool = True,
) -> None:
    """Move `petition` to `target`, or refuse. The one place a petition's state changes."""
    current = petition.state
    if not can_transition(current, target):
        raise Conflict(
            Message(
                N_("A petition that is “%(current)s” cannot become “%(target)s”."),
                current=Message(LABELS[current]),
                target=Message(LABELS[target]),
            )
        )
    # The member, not its value: set_committed_value below puts it in the loaded petition as it is, where code
    # compares states by identity (the column type writes the value).
    changes = {"state": target, "updated_at": now, **(values or {})}
    result = db.execute(
        update(Petition)
        .where(Petition.id == petition.id, Petition.state == current)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise Conflict(N_("This petition changed at the same moment. Reload the page to see where it stands."))
    for key, value in changes.items():
        set_committed_value(petition, key, value)  # already in the row: no second UPDATE at flush
    record_event(
        db=db, petition=petition, kind=EVENT_FOR_STATE[target], at=now, actor=actor, detail=detail, public=public
    )
    # Anonymous signing's key lives as long as the petition is open (a hidden one keeps it for a restore).
    if target in (S.closed, S.archived):
        issuing_keys.destroy_for(db=db, petition=petition, now=now)
