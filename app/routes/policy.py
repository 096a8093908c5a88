"""Who may do what: the one place that decides access, exposed as `Annotated` dependencies.

Every route declares exactly one access level through these dependencies; the authorization-matrix test
reads them from the route table and fails for a route that declares none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.accounts import sessions
from app.core.access import Access
from app.core.database import SessionDep, read_without_transaction
from app.core.errors import Forbidden, NotFound, SignInRequired
from app.core.i18n import N_
from app.core.livepolls import mark_public
from app.core.routing import commit_now
from app.core.runtime import Runtime, RuntimeDep
from app.core.types import Id
from app.models.accounts import Role, User, Viewer
from app.models.petitions import Petition
from app.petitions import service as petitions

ROLES_FOR_ACCESS = {
    Access.worker: (Role.worker,),
    Access.responder: (Role.responder,),
    Access.pulse: (Role.responder, Role.admin),
    Access.moderator: (Role.moderator,),
    Access.admin: (Role.admin,),
}
ONLY_FOR = {
    Access.worker: N_("This page is for workers only."),
    Access.responder: N_("This page is for responders only."),
    Access.pulse: N_("Only responders and admins put questions to the whole organization."),
    Access.moderator: N_("This page is for moderators only."),
    Access.admin: N_("This page is for admins only."),
}


def load_user(request: Request, db: SessionDep, rt: RuntimeDep) -> User | None:
    read_without_transaction(db)
    user = sessions.user_for_cookie(db=db, cookie=sessions.cookie(request), now=rt.clock.now())
    commit_now(db)  # gives the connection back before the next thread hop (app/core/routing.py)
    request.state.viewer = Viewer.of(user) if user else None
    return user


def _policy(access: Access) -> Callable[..., Awaitable[User | None]]:
    # async: the decision does no I/O (load_user did), so it costs no hop to a worker thread.
    async def dependency(request: Request, user: Annotated[User | None, Depends(load_user)]) -> User | None:
        if access is Access.public:
            return user
        if access is Access.development:
            if not request.app.state.settings.dev_tools_enabled:
                raise NotFound(N_("There is nothing at this address."))
            return user
        if user is None:
            raise SignInRequired(N_("Please sign in to continue."))
        if access is Access.account:
            return user
        if not user.is_verified:
            raise Forbidden(N_("Please confirm your email address first: enter the code we sent you."))
        if not any(user.has_role(role) for role in ROLES_FOR_ACCESS[access]):
            raise Forbidden(ONLY_FOR[access])
        return user

    dependency.access = access  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{access.value}"
    return dependency


POLICIES = {access: _policy(access) for access in Access if access is not Access.organizer}


# -- the petition named in the path, loaded once by the check that decides who may act on it -----------------
# Each returns the loaded petition, so a handler never loads it a second time. Each gives its connection back
# (commit_now) before the handler's thread hop, as load_user does.


def organized_petition(petition_id: Id, user: Annotated[User | None, Depends(load_user)], db: SessionDep) -> Petition:
    """The petition in the path, for one of its organizers (creator or co-organizer)."""
    if user is None:
        raise SignInRequired(N_("Please sign in to continue."))
    if not user.is_verified:
        raise Forbidden(N_("Please confirm your email address first: enter the code we sent you."))
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    if not petitions.is_organizer(db=db, petition=petition, user=user):
        raise Forbidden(N_("Only this petition's organizers can do that."))
    commit_now(db)
    return petition


organized_petition.access = Access.organizer  # type: ignore[attr-defined]


async def require_organizer(
    user: Annotated[User | None, Depends(load_user)], petition: Annotated[Petition, Depends(organized_petition)]
) -> User:
    """The organizer acting on the petition in the path (organized_petition checked them)."""
    if user is None:  # organized_petition refused it already
        raise SignInRequired(N_("Please sign in to continue."))
    return user


def readable_petition(
    petition_id: Id, user: Annotated[User | None, Depends(load_user)], db: SessionDep, rt: RuntimeDep
) -> Petition:
    """The petition in the path, if its reader may read it (404 otherwise), closed first if its deadline passed.

    It declares no access level of its own: the route's account dependency does (a public page, or a worker's
    form), and this applies the petition's reading rule on top."""
    petition = petitions.get_readable(db=db, rt=rt, petition_id=petition_id, user=user)
    commit_now(db)  # also makes a closing on read stand, whatever the handler answers
    return petition


def share_when_public(request: Request, *, user: User | None, petition: Petition, db: SessionDep, rt: Runtime) -> None:
    """Mark a live poll's answer as the same for every reader when a signed-out reader may read the petition (what a
    signed-in one reads of it is then the same): open pages' polls share it (app/core/livepolls.py)."""
    if user is not None:
        try:
            petitions.get_readable(db=db, rt=rt, petition_id=petition.id, user=None)
        except NotFound:
            return
    mark_public(request)


def moderated_petition(
    petition_id: Id, moderator: Annotated[User, Depends(POLICIES[Access.moderator])], db: SessionDep
) -> Petition:
    """The petition in the path, in any state, for a moderator."""
    petition = petitions.get_or_404(db=db, petition_id=petition_id)
    commit_now(db)
    return petition


def respondable_petition(
    petition_id: Id, responder: Annotated[User, Depends(POLICIES[Access.responder])], db: SessionDep, rt: RuntimeDep
) -> Petition:
    """The petition in the path, for a responder: only one the petition page would show them (a draft, a hidden
    petition or a privately rejected one is not a responder's to read or answer)."""
    petition = petitions.get_readable(db=db, rt=rt, petition_id=petition_id, user=responder)
    commit_now(db)
    return petition


async def anyone() -> None:
    """Public, and needing no account look-up (health checks must not depend on sessions)."""


anyone.access = Access.public  # type: ignore[attr-defined]

Anyone = Annotated[None, Depends(anyone)]
OptionalUser = Annotated[User | None, Depends(POLICIES[Access.public])]
DevelopmentOnly = Annotated[User | None, Depends(POLICIES[Access.development])]
CurrentAccount = Annotated[User, Depends(POLICIES[Access.account])]
CurrentUser = Annotated[User, Depends(POLICIES[Access.worker])]
Organizer = Annotated[User, Depends(require_organizer)]
OrganizedPetition = Annotated[Petition, Depends(organized_petition)]
ReadablePetition = Annotated[Petition, Depends(readable_petition)]
ModeratedPetition = Annotated[Petition, Depends(moderated_petition)]
RespondablePetition = Annotated[Petition, Depends(respondable_petition)]
Responder = Annotated[User, Depends(POLICIES[Access.responder])]
PulseAuthor = Annotated[User, Depends(POLICIES[Access.pulse])]
Moderator = Annotated[User, Depends(POLICIES[Access.moderator])]
Admin = Annotated[User, Depends(POLICIES[Access.admin])]
