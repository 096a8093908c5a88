"""Drafting a petition: categories, the draft form's rules, the draft itself, and corrections to a published text
(each a new version, shown with a diff).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.forms import FieldCheck
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as signature_log
from app.models.accounts import User
from app.models.petitions import (
    Category,
    Petition,
    PetitionOrganizer,
    PetitionVersion,
)
from app.petitions import notify
from app.petitions.schemas import PetitionCorrection, PetitionDraft
from app.petitions.service.events import S, record_event

MAX_DEADLINE_DAYS = 366


def categories(*, db: Session, active_only: bool = True) -> list[Category]:
    statement = select(Category).order_by(Category.name)
    if active_only:
        statement = statement.where(Category.active.is_(True))
    return list(db.scalars(statement))


def add_category(*, db: Session, name: str) -> Category:
    name = name.strip()
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    if not name or len(name) > 80 or not slug:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"name": N_("Use 1 to 80 characters, with at least one letter or digit.")},
        )
    category = Category(slug=slug, name=name, active=True)
    try:
        with db.begin_nested():
            db.add(category)
    except IntegrityError:
        raise Conflict(Message(N_("There is already a category like “%(name)s”."), name=name)) from None
    return category


def toggle_category(*, db: Session, category_id: int) -> Category:
    category = db.get(Category, category_id)
    if category is None:
        raise NotFound(N_("There is no such category."))
    category.active = not category.active
    return category


def _category(db: Session, slug: str) -> Category:
    category = db.scalar(select(Category).where(Category.slug == slug, Category.active.is_(True)))
    if category is None:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"category": N_("Choose one of the listed categories.")},
        )
    return category


def _deadline(value: date | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    today = now.astimezone(UTC).date()
    if value <= today:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"deadline": N_("Choose a date after today, or leave it empty.")},
        )
    if value > today + timedelta(days=MAX_DEADLINE_DAYS):
        raise InvalidInput(
            N_("Please correct the highlighted fields."), fields={"deadline": N_("Choose a date within a year.")}
        )
    return datetime.combine(value, time(23, 59, 59), UTC)


def draft_checks(*, db: Session, rt: Runtime) -> dict[str, FieldCheck]:
    """The draft's checks of single fields that need the database or the clock, for a page to run with the schema's:
    a deadline in the past is reported in the same round as an empty title."""
    now = rt.clock.now()

    def deadline(raw: object) -> None:
        try:
            value = date.fromisoformat(raw) if isinstance(raw, str) and raw else None
        except ValueError:
            return  # not a date: the schema says so
        _deadline(value, now)

    return {"category": lambda raw: _category(db, raw or ""), "deadline": deadline}


def require_draft(petition: Petition) -> None:
    """Only a draft's form takes a category and a deadline: a published text changes through a correction."""
    if petition.state is not S.draft:
        raise Conflict(
            "This petition is no longer a draft: its text can only change through a correction, which everyone can see."
        )


def create_draft(*, db: Session, rt: Runtime, creator: User, form: PetitionDraft) -> Petition:
    now = rt.clock.now()
    category = _category(db, form.category)
    deadline = _deadline(form.deadline, now)
    petition = Petition(
        state=S.draft,
        title=form.title,
        ask=form.ask,
        background=form.background,
        decision_maker=form.decision_maker,
        category_id=category.id,
        deadline=deadline,
        allow_anonymous=form.allow_anonymous,
        collect_attributes=form.collect_attributes,
        creator_id=creator.id,
        version=0,
        sponsor_nonce=secrets.token_hex(16),
        sponsor_count=0,
        signature_count=0,
        withdrawal_count=0,
        created_at=now,
        updated_at=now,
        rejection=None,
        moderation_lock_by=None,
    )
    petition.category = category
    db.add(petition)
    db.flush()
    db.add(PetitionOrganizer(petition_id=petition.id, user_id=creator.id, is_creator=True, added_at=now))
    record_event(db=db, petition=petition, kind="drafted", at=now, actor=creator, public=False)
    db.flush()
    return petition


def update_draft(*, db: Session, rt: Runtime, petition: Petition, form: PetitionDraft) -> None:
    page_changed(db, petition.id)  # the petition's JSON shows it (its ETag)
    require_draft(petition)
    category = _category(db, form.category)
    petition.deadline = _deadline(form.deadline, rt.clock.now())
    petition.title, petition.ask, petition.background = form.title, form.ask, form.background
    petition.decision_maker = form.decision_maker
    petition.category_id, petition.category = category.id, category
    petition.collect_attributes = form.collect_attributes
    petition.allow_anonymous = form.allow_anonymous
    petition.updated_at = rt.clock.now()
    db.flush()


def content_hash(*, title: str, ask: str, background: str, decision_maker: str | None) -> str:
    """SHA-256 of the text's canonical JSON: what the signature log will commit to."""
    canonical = json.dumps(
        {"title": title, "ask": ask, "background": background, "decision_maker": decision_maker},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _add_version(
    db: Session, petition: Petition, *, number: int, author: User | None, note: str | None, now: datetime
) -> PetitionVersion:
    version = PetitionVersion(
        petition_id=petition.id,
        number=number,
        title=petition.title,
        ask=petition.ask,
        background=petition.background,
        decision_maker=petition.decision_maker,
        note=note,
        content_hash=content_hash(
            title=petition.title,
            ask=petition.ask,
            background=petition.background,
            decision_maker=petition.decision_maker,
        ),
        author_id=author.id if author else None,
        created_at=now,
    )
    db.add(version)
    return version


def correct_text(*, db: Session, rt: Runtime, petition: Petition, actor: User, form: PetitionCorrection) -> None:
    """A visible correction: a new version, kept beside the old ones; signers are told."""
    if petition.state is not S.open:
        raise Conflict(
            "Only an open petition can be corrected."
            if petition.state is not S.draft
            else "This petition is a draft: edit it directly."
        )
    unchanged = (form.title, form.ask, form.background, form.decision_maker) == (
        petition.title,
        petition.ask,
        petition.background,
        petition.decision_maker,
    )
    if unchanged:
        raise InvalidInput(N_("Nothing in the text changed."), fields={"title": N_("Change the text, or cancel.")})
    now = rt.clock.now()
    petition.title, petition.ask, petition.background = form.title, form.ask, form.background
    petition.decision_maker = form.decision_maker
    petition.version += 1
    petition.updated_at = now
    version = _add_version(db, petition, number=petition.version, author=actor, note=form.note, now=now)
    signature_log.pend(
        db=db,
        petition_id=petition.id,
        entry={"kind": "version", "version": version.number, "text_sha256": version.content_hash},
    )
    record_event(
        db=db,
        petition=petition,
        kind="new_version",
        at=now,
        actor=actor,
        detail=f"Version {petition.version}: {form.note}",
    )
    db.flush()
    notify.announce(db=db, petition=petition, template="petition_corrected", subject_id=version.id, now=now)
