"""After the retention period, signers' names and groups are erased; the counts and rows remain."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.audit import service as audit
from app.models.audit import AuditEntry
from app.models.petitions import Petition
from app.models.signatures import GroupKind, Signature, SignerGroup
from app.signatures import retention
from app.signatures import service as signatures
from tests import factories


def test_names_and_groups_are_erased_after_retention_and_counts_remain(db, rt, clock) -> None:
    group = SignerGroup(kind=GroupKind.department, name="Support", active=True)
    db.add(group)
    db.commit()
    petition = factories.open_petition(db, rt, collect_attributes=True)
    kept_open = factories.open_petition(db, rt, title="Still open")
    for visibility in ("public", "organizers"):
        signatures.sign(
            db=db,
            rt=rt,
            petition_id=petition.id,
            user=factories.worker(db),
            visibility=visibility,
            notify_updates=False,
            department=str(group.id),
        )
    signatures.sign(
        db=db, rt=rt, petition_id=kept_open.id, user=factories.worker(db), visibility="public", notify_updates=False
    )
    from app.petitions import service as petitions

    petitions.close(db=db, rt=rt, petition=petition, actor=None, reason="The organizers closed it.")
    db.commit()

    clock.advance(timedelta(days=rt.settings.retention_days - 1))
    assert retention.erase_expired(db=db, rt=rt) == [], "not yet"
    clock.advance(timedelta(days=2))
    [erasure] = retention.erase_expired(db=db, rt=rt)
    db.commit()
    assert erasure.petition_id == petition.id and erasure.signatures == 2

    db.expire_all()
    rows = list(db.scalars(select(Signature).where(Signature.petition_id == petition.id)))
    assert len(rows) == 2
    assert all(r.public_name is None and r.sealed_name is None and r.department_id is None for r in rows)
    archived = db.get(Petition, petition.id)
    assert archived.state == "archived" and archived.signature_count == 2
    other = db.scalar(select(Signature).where(Signature.petition_id == kept_open.id))
    assert other.public_name is not None, "open petitions keep their signers' names"
    assert db.scalar(select(AuditEntry.action).order_by(AuditEntry.seq.desc())) == "retention.erased"
    assert audit.verify(db=db).intact
    assert retention.erase_expired(db=db, rt=rt) == [], "once"
    assert signatures.names_for_organizers(db=db, rt=rt, petition=archived) == []
