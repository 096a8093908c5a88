"""Retention: once a petition has been closed long enough, the names and groups signers gave are erased.

The counts stay, and so do the signature rows (they are what the tally and its log are made of); what goes is
what could identify a signer: the names shown to organizers or everyone, and department and location.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.database import rows_changed
from app.core.runtime import Runtime
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.models.signatures import Signature
from app.petitions import service as petitions


@dataclass(frozen=True)
class Erasure:
    petition_id: int
    signatures: int


def erase_expired(*, db: Session, rt: Runtime, limit: int = 100) -> list[Erasure]:
    """Erase signer details of petitions closed for longer than the retention period, and archive them."""
    cutoff = rt.clock.now() - timedelta(days=rt.settings.retention_days)
    due = list(
        db.scalars(
            select(Petition)
            .where(Petition.state == PetitionState.closed, Petition.closed_at <= cutoff)
            .order_by(Petition.closed_at)
            .limit(limit)
        )
    )
    erasures = []
    for petition in due:
        erased = rows_changed(
            db.execute(
                update(Signature)
                .where(
                    Signature.petition_id == petition.id,
                    or_(
                        Signature.public_name.is_not(None),
                        Signature.sealed_name.is_not(None),
                        Signature.department_id.is_not(None),
                        Signature.location_id.is_not(None),
                    ),
                )
                .values(public_name=None, sealed_name=None, department_id=None, location_id=None)
                .execution_options(synchronize_session=False)
            )
        )
        petitions.transition(
            db=db,
            petition=petition,
            target=PetitionState.archived,
            now=rt.clock.now(),
            detail=f"Signers' names and groups erased after {rt.settings.retention_days} days; the counts remain.",
        )
        audit.record(
            db=db,
            rt=rt,
            actor=None,
            action="retention.erased",
            subject=f"petition {petition.id}",
            detail={"signatures": erased, "retention_days": rt.settings.retention_days},
        )
        erasures.append(Erasure(petition_id=petition.id, signatures=erased))
    return erasures
