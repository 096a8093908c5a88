"""Petition rules: drafting, sponsors, opening, corrections, organizers, updates, following, closing.

Every change of state goes through `transition`, which refuses illegal moves and applies legal ones with a
compare-and-set UPDATE, so two requests racing for the same move cannot both make it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts import service as accounts
from app.accounts.models import Role, User
from app.anonymous import keys as issuing_keys
from app.core.clock import to_the_hour
from app.core.database import on_replica, rows_changed
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from app.core.forms import FieldCheck
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as signature_log
from app.mail import service as mail
from app.mail import unsubscribe
from app.mail.kinds import MailKind
from app.organization import service as organization
from app.organization.eligibility import eligible_members
from app.petitions import notify
from app.petitions.lifecycle import LABELS, SIGNABLE_STATES, VISIBLE_STATES, PetitionState, can_transition
from app.petitions.models import (
    Category,
    Follow,
    Petition,
    PetitionEvent,
    PetitionOrganizer,
    PetitionUpdate,
    PetitionVersion,
    Sponsorship,
)
from app.petitions.schemas import PetitionCorrection, PetitionDraft, UpdateCreate

S = PetitionState
MAX_ORGANIZERS = 10
TOO_MANY_ORGANIZERS = N_("A petition can have at most %(count)s organizers.")
MAX_DEADLINE_DAYS = 366

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
    current = petition.state_enum
    if not can_transition(current, target):
        raise Conflict(
            Message(
                N_("A petition that is “%(current)s” cannot become “%(target)s”."),
                current=Message(LABELS[current]),
                target=Message(LABELS[target]),
            )
        )
    changes = {"state": target.value, "updated_at": now, **(values or {})}
    result = db.execute(
        update(Petition)
        .where(Petition.id == petition.id, Petition.state == current.value)
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


# -- reading -------------------------------------------------------------------------------------------------


def get_or_404(*, db: Session, petition_id: int) -> Petition:
    petition = db.scalar(
        select(Petition)
        .where(Petition.id == petition_id)
        .options(joinedload(Petition.category), joinedload(Petition.rejection))
    )
    if petition is None:
        raise NotFound(N_("There is no such petition."))
    return petition


def is_organizer(*, db: Session, petition: Petition, user: User | None) -> bool:
    if user is None:
        return False
    return (
        db.scalar(
            select(PetitionOrganizer.user_id).where(
                PetitionOrganizer.petition_id == petition.id, PetitionOrganizer.user_id == user.id
            )
        )
        is not None
    )


def get_readable(*, db: Session, rt: Runtime, petition_id: int, user: User | None) -> Petition:
    """A petition the viewer may read: visible states for everyone, the rest for organizers and moderators."""
    petition = get_or_404(db=db, petition_id=petition_id)
    close_if_expired(db=db, rt=rt, petition=petition)
    withheld = petition.state_enum is S.rejected and petition.rejection is not None and not petition.rejection.public
    if petition.state_enum in VISIBLE_STATES and not withheld:
        return petition
    if user is not None and (is_organizer(db=db, petition=petition, user=user) or user.has_role(Role.moderator)):
        return petition
    raise NotFound(N_("There is no such petition."))


_PETITION_BY_ID = select(Petition).where(Petition.id == bindparam("id"))  # built once: the sign path runs it


def get_for_signing(*, db: Session, rt: Runtime, petition_id: int, user: User) -> Petition:
    """The petition a signature or withdrawal is for, loaded lightly: the sign path's hottest query."""
    petition = db.execute(_PETITION_BY_ID, {"id": petition_id}).scalar_one_or_none()
    if (
        petition is not None
        and petition.state_enum in SIGNABLE_STATES
        and not close_if_expired(db=db, rt=rt, petition=petition)
    ):
        return petition
    return get_readable(db=db, rt=rt, petition_id=petition_id, user=user)


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


def versions(*, db: Session, petition: Petition) -> list[PetitionVersion]:
    return list(
        db.scalars(
            select(PetitionVersion).where(PetitionVersion.petition_id == petition.id).order_by(PetitionVersion.number)
        )
    )


def timeline(*, db: Session, petition: Petition, include_private: bool = False) -> list[PetitionEvent]:
    statement = select(PetitionEvent).where(PetitionEvent.petition_id == petition.id)
    if not include_private:
        statement = statement.where(PetitionEvent.public.is_(True))
    return list(db.scalars(statement.order_by(PetitionEvent.at, PetitionEvent.id)))


def updates(*, db: Session, petition: Petition) -> list[PetitionUpdate]:
    return list(
        db.scalars(
            select(PetitionUpdate)
            .where(PetitionUpdate.petition_id == petition.id)
            .order_by(PetitionUpdate.created_at.desc(), PetitionUpdate.id.desc())
        )
    )


def organizer_accounts(*, db: Session, petition: Petition) -> list[tuple[User, bool]]:
    rows = db.execute(
        select(User, PetitionOrganizer.is_creator)
        .join(PetitionOrganizer, PetitionOrganizer.user_id == User.id)
        .where(PetitionOrganizer.petition_id == petition.id)
    )
    # Names are sealed, so they are ordered here rather than in SQL (a petition has a handful of organizers).
    return sorted(
        ((user, is_creator) for user, is_creator in rows), key=lambda row: (not row[1], row[0].display_name.casefold())
    )


def is_following(*, db: Session, petition: Petition, user: User | None) -> bool:
    if user is None:
        return False
    return (
        db.scalar(select(Follow.user_id).where(Follow.petition_id == petition.id, Follow.user_id == user.id))
        is not None
    )


def sponsors(*, db: Session, petition: Petition) -> list[User]:
    return list(
        db.scalars(
            select(User)
            .join(Sponsorship, Sponsorship.user_id == User.id)
            .where(Sponsorship.petition_id == petition.id)
            .order_by(Sponsorship.created_at)
        )
    )


def next_threshold(petition: Petition) -> int | None:
    """The signature count the petition page's progress bar runs to (the petition's next goal)."""
    goal = petition.next_goal
    return goal.signatures if goal else None


# -- drafting ------------------------------------------------------------------------------------------------


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
    if petition.state_enum is not S.draft:
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


# -- sponsors ------------------------------------------------------------------------------------------------


def sponsor_token(*, rt: Runtime, petition: Petition) -> str:
    return rt.keyring.keyed_hash("sponsor-link", f"{petition.id}:{petition.sponsor_nonce}")[:40]


def sponsor_url(*, rt: Runtime, petition: Petition) -> str:
    return f"/petitions/{petition.id}/sponsor/{sponsor_token(rt=rt, petition=petition)}"


def check_sponsor_token(*, rt: Runtime, petition: Petition, token: str) -> None:
    if not hmac.compare_digest(sponsor_token(rt=rt, petition=petition).encode(), token[:64].encode()):
        raise NotFound(N_("This sponsor link is not valid. Ask the petition's creator for the link again."))


def sponsor(*, db: Session, rt: Runtime, petition: Petition, token: str, user: User) -> None:
    check_sponsor_token(rt=rt, petition=petition, token=token)
    if petition.state_enum is not S.gathering_sponsors:
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


# -- opening and closing -------------------------------------------------------------------------------------


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
    if petition.state_enum is S.open and petition.deadline is not None and petition.deadline <= rt.clock.now():
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


# -- corrections ---------------------------------------------------------------------------------------------


def correct_text(*, db: Session, rt: Runtime, petition: Petition, actor: User, form: PetitionCorrection) -> None:
    """A visible correction: a new version, kept beside the old ones; signers are told."""
    if petition.state_enum is not S.open:
        raise Conflict(
            "Only an open petition can be corrected."
            if petition.state_enum is not S.draft
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


# -- organizers, updates, followers --------------------------------------------------------------------------


def require_organizer(*, db: Session, petition: Petition, user: User) -> None:
    if not is_organizer(db=db, petition=petition, user=user):
        raise Forbidden(N_("Only this petition's organizers can do that."))


def add_organizer(*, db: Session, rt: Runtime, petition: Petition, actor: User, raw_email: str) -> User:
    if actor.id != petition.creator_id:
        raise Forbidden(N_("Only the petition's creator can add organizers."))
    email = accounts.normalize_email(db=db, rt=rt, raw=raw_email)
    invitee = accounts.get_by_email(db=db, email=email)
    if invitee is None or not invitee.is_verified:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"email": "There is no confirmed account with this address yet: ask them to sign up first."},
        )
    if is_organizer(db=db, petition=petition, user=invitee):
        raise Conflict(Message(N_("%(name)s already organizes this petition."), name=invitee.display_name))
    count = (
        db.scalar(
            select(func.count()).select_from(PetitionOrganizer).where(PetitionOrganizer.petition_id == petition.id)
        )
        or 0
    )
    if count >= MAX_ORGANIZERS:
        raise Conflict(Message(TOO_MANY_ORGANIZERS, count=MAX_ORGANIZERS))
    db.add(PetitionOrganizer(petition_id=petition.id, user_id=invitee.id, is_creator=False, added_at=rt.clock.now()))
    db.flush()
    notify.tell(db=db, rt=rt, user=invitee, petition=petition, template="organizer_added", context={"creator": actor})
    return invitee


INVITATION_DAYS = 7
# Each invitation mails a colleague: a creator cannot use the form to mail the whole company.
INVITATION_RULE = "20/hour;50/day"


def _invitations(rt: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(rt.keyring.key("organizer-invitation").hex(), salt="organizer-invitation")


def invite_organizer(*, db: Session, rt: Runtime, petition: Petition, actor: User, raw_email: str) -> None:
    """Mail an invitation to organize, or a "join first" mail: the creator sees the same answer either way.

    Adding a colleague at once, or refusing an address without an account, told any worker (anyone can start a
    draft) which addresses have accounts (issue #21). Whoever accepts the invitation becomes an organizer.
    """
    if actor.id != petition.creator_id:
        raise Forbidden(N_("Only the petition's creator can add organizers."))
    email = accounts.normalize_email(db=db, rt=rt, raw=raw_email)
    rt.limiter.hit(action="organizer-invite", subject=f"account:{actor.id}", rule=INVITATION_RULE)
    invitee = accounts.get_by_email(db=db, email=email)
    base_url = rt.settings.base_url.rstrip("/")
    context = {
        "creator": actor,
        "petition": petition,
        "base_url": base_url,
        "days": INVITATION_DAYS,
        "petition_url": f"{base_url}/petitions/{petition.id}",
    }
    if invitee is not None and invitee.is_verified:
        token = _invitations(rt).dumps([petition.id, invitee.id])
        mail.queue(
            db=db,
            templates=rt.templates,
            to_address=invitee.notification_address,
            template="organizer_invited",
            now=rt.clock.now(),
            context={
                **context,
                "user": invitee,
                "accept_url": f"{base_url}/petitions/{petition.id}/organizers/invitations/{token}",
            },
        )
    else:
        mail.queue(
            db=db,
            templates=rt.templates,
            to_address=email,
            template="organizer_join_first",
            now=rt.clock.now(),
            context=context,
        )


def organizer_invitation(*, rt: Runtime, petition: Petition, user: User, token: str) -> None:
    """Check that `token` invites `user` to organize `petition` and has not expired."""
    try:
        petition_id, user_id = _invitations(rt).loads(token[:512], max_age=INVITATION_DAYS * 86400)
    except (BadSignature, ValueError, TypeError):
        raise NotFound(
            N_("This invitation is not valid or has expired. Ask the petition's creator to invite you again.")
        ) from None
    if petition_id != petition.id:
        raise NotFound(
            N_("This invitation is not valid or has expired. Ask the petition's creator to invite you again.")
        )
    if user_id != user.id:
        raise Forbidden(N_("This invitation was sent to another account. Sign in with the address it was sent to."))


def accept_organizer_invitation(*, db: Session, rt: Runtime, petition: Petition, user: User, token: str) -> None:
    organizer_invitation(rt=rt, petition=petition, user=user, token=token)
    if is_organizer(db=db, petition=petition, user=user):
        raise Conflict(N_("You already organize this petition."))
    count = (
        db.scalar(
            select(func.count()).select_from(PetitionOrganizer).where(PetitionOrganizer.petition_id == petition.id)
        )
        or 0
    )
    if count >= MAX_ORGANIZERS:
        raise Conflict(Message(TOO_MANY_ORGANIZERS, count=MAX_ORGANIZERS))
    db.add(
        PetitionOrganizer(
            petition_id=petition.id, user_id=user.id, is_creator=False, added_at=to_the_hour(rt.clock.now())
        )
    )
    db.flush()


def remove_organizer(*, db: Session, petition: Petition, actor: User, user_id: int) -> None:
    if actor.id != petition.creator_id and actor.id != user_id:
        raise Forbidden(N_("Only the petition's creator can remove other organizers."))
    if user_id == petition.creator_id:
        raise Conflict(N_("The creator cannot be removed from their own petition."))
    removed = db.execute(
        delete(PetitionOrganizer).where(
            PetitionOrganizer.petition_id == petition.id, PetitionOrganizer.user_id == user_id
        )
    )
    if rows_changed(removed) == 0:
        raise NotFound(N_("That person does not organize this petition."))


def post_update(*, db: Session, rt: Runtime, petition: Petition, actor: User, form: UpdateCreate) -> PetitionUpdate:
    if petition.state_enum not in (S.open, S.closed):
        raise Conflict(N_("Updates can be posted once the petition is open."))
    now = rt.clock.now()
    week_ago = now - timedelta(days=7)
    recent = list(
        db.scalars(
            select(PetitionUpdate.created_at)
            .where(PetitionUpdate.petition_id == petition.id, PetitionUpdate.created_at > week_ago)
            .order_by(PetitionUpdate.created_at)
        )
    )
    if len(recent) >= rt.settings.updates_per_week:
        next_possible = recent[0] + timedelta(days=7)
        raise RateLimited(
            Message(
                N_(
                    "Organizers can send at most %(count)s updates a week, so signers keep reading them. "
                    "The next one can go out on %(day)s at %(time)s UTC."
                ),
                count=rt.settings.updates_per_week,
                day=next_possible.date(),
                time=f"{next_possible:%H:%M}",
            )
        )
    update_row = PetitionUpdate(
        petition_id=petition.id, author_id=actor.id, title=form.title, body=form.body, created_at=now
    )
    db.add(update_row)
    record_event(db=db, petition=petition, kind="update_posted", at=now, actor=actor, detail=form.title)
    db.flush()
    notify.announce(db=db, petition=petition, template="petition_update", subject_id=update_row.id, now=now)
    return update_row


def follow(*, db: Session, rt: Runtime, petition: Petition, user: User) -> bool:
    """Follow a petition; returns False when already following (following twice is harmless)."""
    if petition.state_enum not in VISIBLE_STATES:
        raise Conflict(N_("Only a published petition can be followed."))
    # Following is asking for the petition's news: a "stop" sent from an earlier mail's link no longer holds.
    unsubscribe.turn_on(db=db, user=user, kind=MailKind.news, petition_id=petition.id)
    if is_following(db=db, petition=petition, user=user):
        return False
    try:
        with db.begin_nested():
            db.add(Follow(petition_id=petition.id, user_id=user.id, created_at=to_the_hour(rt.clock.now())))
    except IntegrityError:
        return False
    return True


def unfollow(*, db: Session, petition: Petition, user: User) -> None:
    db.execute(delete(Follow).where(Follow.petition_id == petition.id, Follow.user_id == user.id))
