"""From draft to open: co-sponsors, who confirm through a private link, and opening (the issuing key, the
signature log's entry 0, the response threshold).
"""

from __future__ import annotations

import hmac
import math
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as signature_log
from app.models.accounts import User
from app.models.petitions import (
    Petition,
    Sponsorship,
)
from app.organization import service as organization
from app.organization.eligibility import eligible_members
from app.petitions import issuing_keys, notify
from app.petitions.service.drafting import _add_version
from app.petitions.service.events import S, transition
from app.petitions.service.reading import is_organizer


def submit_for_sponsors(*, db: Session, rt: Runtime, petition: Petition, actor: User) -> None:
    """Freeze the draft as version 1 and start collecting sponsors."""
    now = rt.clock.now()
    if petition.deadline is not None and petition.deadline <= now:
        raise InvalidInput(
            N_("The deadline has already passed: choose a later one before sending this petition on."),
            fields={"deadline": N_("Choose a date after today, or leave it empty.")},
        )
    transition(
        db=db,
        petition=petition,
        target=S.gathering_sponsors,
        now=now,
        actor=actor,
        values={"sponsors_requested_at": now, "version": 1},
        public=False,
    )
    _add_version(db, petition, number=1, author=actor, note=None, now=now)
    if organization.current(db=db, rt=rt).sponsors_required == 0:
        _sponsored(db=db, rt=rt, petition=petition, now=now)


def sponsor_token(*, rt: Runtime, petition: Petition) -> str:
    return rt.keyring.keyed_hash("sponsor-link", f"{petition.id}:{petition.sponsor_nonce}")[:40]


def sponsor_url(*, rt: Runtime, petition: Petition) -> str:
    return f"/petitions/{petition.id}/sponsor/{sponsor_token(rt=rt, petition=petition)}"


def check_sponsor_token(*, rt: Runtime, petition: Petition, token: str) -> None:
    if not hmac.compare_digest(sponsor_token(rt=rt, petition=petition).encode(), token[:64].encode()):
        raise NotFound(N_("This sponsor link is not valid. Ask the petition's creator for the link again."))


def sponsor(*, db: Session, rt: Runtime, petition: Petition, token: str, user: User) -> None:
    page_changed(db, petition.id)  # the petition's JSON shows it (its ETag)
    check_sponsor_token(rt=rt, petition=petition, token=token)
    if petition.state is not S.gathering_sponsors:
        raise Conflict(N_("This petition is not looking for sponsors any more."))
    if is_organizer(db=db, petition=petition, user=user):
        raise Conflict(N_("You organize this petition: ask colleagues to sponsor it."))
    now = rt.clock.now()
    try:
        with db.begin_nested():
            db.add(Sponsorship(petition_id=petition.id, user_id=user.id, created_at=now))
    except IntegrityError:
        raise Conflict(N_("You already sponsor this petition.")) from None
    count = db.execute(
        update(Petition)
        .where(Petition.id == petition.id)
        .values(sponsor_count=Petition.sponsor_count + 1)
        .returning(Petition.sponsor_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(petition, "sponsor_count", count)
    # At or above: an admin may have lowered the requirement while the petition gathered sponsors.
    if count >= organization.current(db=db, rt=rt).sponsors_required:
        _sponsored(db=db, rt=rt, petition=petition, now=now)


def _sponsored(*, db: Session, rt: Runtime, petition: Petition, now: datetime) -> None:
    if rt.settings.moderation_enabled:
        transition(
            db=db,
            petition=petition,
            target=S.in_moderation,
            now=now,
            values={"moderation_requested_at": now},
            public=False,
        )
        notify.tell_organizers(db=db, rt=rt, petition=petition, template="petition_in_moderation")
    else:
        open_petition(db=db, rt=rt, petition=petition, actor=None)


def advance_sponsored(*, db: Session, rt: Runtime, required: int) -> int:
    """After an admin lowers the sponsors required: petitions that already have enough move on now."""
    ready = list(
        db.scalars(
            select(Petition)
            .where(Petition.state == S.gathering_sponsors, Petition.sponsor_count >= required)
            .order_by(Petition.id)
            .with_for_update()
        )
    )
    now = rt.clock.now()
    for petition in ready:
        _sponsored(db=db, rt=rt, petition=petition, now=now)
    return len(ready)


def response_threshold(*, db: Session, rt: Runtime) -> int:
    """The absolute threshold, or the percentage of eligible members when that is larger."""
    threshold = organization.current(db=db, rt=rt).response_threshold
    members = eligible_members(db=db, rt=rt)
    if rt.settings.response_threshold_percent and members:
        threshold = max(threshold, math.ceil(members * rt.settings.response_threshold_percent / 100))
    return threshold


def open_petition(*, db: Session, rt: Runtime, petition: Petition, actor: User | None) -> None:
    now = rt.clock.now()
    if petition.deadline is not None and petition.deadline <= now:
        raise Conflict(N_("The petition's deadline has passed; it cannot open."))
    threshold = response_threshold(db=db, rt=rt)
    escalation = max(organization.current(db=db, rt=rt).escalation_threshold, threshold + 1)
    transition(
        db=db,
        petition=petition,
        target=S.open,
        now=now,
        actor=actor,
        values={
            "opened_at": now,
            "response_threshold": threshold,
            "escalation_threshold": escalation,
            "moderation_lock_by_id": None,
            "moderation_lock_until": None,
            "hidden_reason": None,
        },
    )
    issuing_keys.create_for(db=db, rt=rt, petition=petition, now=now)
    signature_log.open_log(db=db, rt=rt, petition=petition, now=now)
    notify.tell_organizers(db=db, rt=rt, petition=petition, template="petition_opened")
