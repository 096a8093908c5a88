"""Changing a poll (issue #25): what the edit page and `PATCH /api/v1/ballots/{id}` both hand to `service.edit`.

Both send only what they change: a field left out keeps its value. So a poll that has opened is changed by
sending its note or closing time alone, and the frozen fields (question, options, number of choices, minimum,
live results) are refused only when a change to them is asked for. Every rule a field follows is the service's
(`service.edit`, through the same `_check` as creating), checked in one round, so the page and the API refuse the
same input with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import service as ballots
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.ballots import Ballot, BallotKind


@dataclass(frozen=True)
class Change:
    """The fields a change names; None: left as it is (for `note`, `clear_note` empties it)."""

    question: str | None = None
    options: Sequence[str] | None = None
    max_choices: int | None = None
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    results_live: bool | None = None
    min_answers: int | None = None
    note: str | None = None
    clear_note: bool = False


def apply(db: Session, rt: Runtime, *, actor: User, ballot: Ballot, change: Change) -> Ballot:
    """The ballot with `change` applied by `service.edit` (which decides who may, and what may change when)."""
    # The values a change leaves out are read under the poll's lock, which service.edit takes again (a no-op in
    # this transaction): read before it, they were those from before another organizer's edit that held the lock,
    # and this change wrote them back over it.
    db.execute(select(Ballot.id).where(Ballot.id == ballot.id).with_for_update())
    db.refresh(ballot)
    current = ballots.labels(db=db, ballot=ballot)
    note = None if change.clear_note else change.note if change.note is not None else ballot.note
    return ballots.edit(
        db,
        rt,
        actor=actor,
        ballot=ballot,
        question=change.question if change.question is not None else ballot.question,
        # The scale's five options are fixed: they are sent as none, as when it was created.
        options=change.options if change.options is not None else ([] if ballot.kind is BallotKind.scale else current),
        max_choices=change.max_choices if change.max_choices is not None else ballot.max_choices,
        opens_at=change.opens_at if change.opens_at is not None else ballot.opens_at,
        closes_at=change.closes_at if change.closes_at is not None else ballot.closes_at,
        results_live=change.results_live if change.results_live is not None else ballot.results_live,
        min_answers=change.min_answers if change.min_answers is not None else ballot.min_answers,
        note=note,
    )
