"""Loading petitions and what their pages list: who may read which petition, and the lists beside it.

A petition past its deadline is closed on read in one place, `get_readable`, which the petition dependencies
(app/routes/policy.py) and the sign path use.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from app.core.errors import NotFound
from app.core.i18n import N_
from app.core.routing import commit_now
from app.core.runtime import Runtime
from app.models.accounts import Role, User
from app.models.lifecycle import SIGNABLE_STATES, VISIBLE_STATES
from app.models.petitions import (
    Follow,
    Petition,
    PetitionEvent,
    PetitionOrganizer,
    PetitionUpdate,
    PetitionVersion,
    Sponsorship,
)
from app.petitions.service.closing import close_if_expired
from app.petitions.service.events import S


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
    if readable_by_anyone(petition):
        return petition
    if user is not None and (is_organizer(db=db, petition=petition, user=user) or user.has_role(Role.moderator)):
        return petition
    raise NotFound(N_("There is no such petition."))


def readable_by_anyone(petition: Petition) -> bool:
    """Whether every reader may read the petition as loaded (its category and rejection with it, as `get_or_404`
    loads them): a visible state, and not a rejection whose reason is withheld."""
    withheld = petition.state is S.rejected and petition.rejection is not None and not petition.rejection.public
    return petition.state in VISIBLE_STATES and not withheld


def get_readable_on(data: Session, *, db: Session, rt: Runtime, petition_id: int, user: User | None) -> Petition:
    """The petition as `data` (a read replica's session) holds it, if the viewer may read it. Who may read is
    decided on the primary (`db`): a replica that lags would still show a petition just hidden, or its
    breakdowns to an organizer just removed. A petition the replica has not seen yet is not found."""
    petition = get_readable(db=db, rt=rt, petition_id=petition_id, user=user)
    if data is db:
        return petition
    copy = data.get(Petition, petition.id)
    if copy is None:
        raise NotFound(N_("There is no such petition."))
    return copy


_PETITION_BY_ID = select(Petition).where(Petition.id == bindparam("id"))  # built once: the sign path runs it


def get_for_signing(*, db: Session, rt: Runtime, petition_id: int, user: User, keep_closing: bool = True) -> Petition:
    """The petition a signature or withdrawal is for, loaded lightly: the sign path's hottest query.

    A petition past its deadline is closed here, and the closing committed at once (`keep_closing`), as
    ReadablePetition does (app/routes/policy.py): the request that found it is then refused (a 409), and its rollback
    must not reopen the petition. Only a caller that has written nothing yet may keep it; one that has passes
    `keep_closing=False`, and the closing is left to the next reader or the periodic job."""
    petition = db.execute(_PETITION_BY_ID, {"id": petition_id}).scalar_one_or_none()
    if petition is not None and petition.state in SIGNABLE_STATES and not _past_deadline(petition, rt):
        return petition
    petition = get_readable(db=db, rt=rt, petition_id=petition_id, user=user)  # closes it if its deadline passed
    if keep_closing:
        commit_now(db)
    return petition


def _past_deadline(petition: Petition, rt: Runtime) -> bool:
    return petition.deadline is not None and petition.deadline <= rt.clock.now()


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
