"""The people around a petition: co-organizers and their invitations, updates to signers, and followers."""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.clock import to_the_hour
from app.core.database import rows_changed
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.mail import service as mail
from app.mail import unsubscribe
from app.models.accounts import User
from app.models.lifecycle import VISIBLE_STATES
from app.models.mail_kinds import MailKind
from app.models.petitions import (
    Follow,
    Petition,
    PetitionOrganizer,
    PetitionUpdate,
)
from app.petitions import notify
from app.petitions.schemas import UpdateCreate
from app.petitions.service.events import S, record_event
from app.petitions.service.reading import is_following, is_organizer

MAX_ORGANIZERS = 10


TOO_MANY_ORGANIZERS = N_("A petition can have at most %(count)s organizers.")


INVITATION_DAYS = 7


# Each invitation mails a colleague: a creator cannot use the form to mail the whole company.
INVITATION_RULE = "20/hour;50/day"


def _invitations(rt: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(rt.keyring.key("organizer-invitation").hex(), salt="organizer-invitation")


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
    if petition.state not in (S.open, S.closed):
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
    if petition.state not in VISIBLE_STATES:
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
