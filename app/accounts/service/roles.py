"""Accounts as admins see them: the list, roles granted and revoked, the first admin from the command line."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.accounts.service.addresses import (
    check_password,
    get_by_email,
    normalize_email,
    this_hour,
)
from app.audit import service as audit
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.security import hash_password
from app.models.accounts import GRANTABLE_ROLES, Role, RoleGrant, User, address_lookup


def list_accounts(*, db: Session, query: str | None, limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    query = (query or "").strip().lower()
    if not query:
        total = db.scalar(select(func.count()).select_from(User)) or 0
        users = db.scalars(
            select(User).order_by(User.id).limit(limit).offset(offset).options(selectinload(User.roles))
        ).all()
        return list(users), total
    exact = db.scalars(select(User.id).where(address_lookup(query))).all()
    if exact:
        matching = list(exact)
    else:
        # Addresses and names are sealed, so a partial match opens each account's in turn: a cost that grows
        # with the number of accounts, paid only by an admin's search (docs/security.md).
        matching = [
            user_id
            for user_id, email, name in db.execute(
                select(User.id, User.email, User.display_name).order_by(User.id).execution_options(yield_per=2000)
            )
            if query in email.lower() or query in name.lower()
        ]
    page = matching[offset : offset + limit]
    users = (
        db.scalars(select(User).where(User.id.in_(page)).order_by(User.id).options(selectinload(User.roles))).all()
        if page
        else []
    )
    return list(users), len(matching)


ALREADY_HOLDS = {
    Role.responder: N_("%(name)s is already a responder."),
    Role.moderator: N_("%(name)s is already a moderator."),
    Role.admin: N_("%(name)s is already an admin."),
}
DOES_NOT_HOLD = {
    # Every verified account is a worker, and that is not a grant an admin can take away.
    Role.worker: N_("Every account is a worker: that is not a role an admin can remove."),
    Role.responder: N_("%(name)s is not a responder."),
    Role.moderator: N_("%(name)s is not a moderator."),
    Role.admin: N_("%(name)s is not an admin."),
}


def grant_role(*, db: Session, rt: Runtime, actor: User, user: User, role: str) -> Role:
    if role not in GRANTABLE_ROLES:
        raise InvalidInput(
            N_("Please correct the highlighted fields."), fields={"role": N_("Choose responder, moderator or admin.")}
        )
    if not user.is_verified:
        raise Conflict(N_("Only accounts with a confirmed address can be given a role."))
    role = Role(role)
    if any(grant.role == role for grant in user.roles):
        raise Conflict(Message(ALREADY_HOLDS[role], name=user.display_name))
    user.roles.append(RoleGrant(user_id=user.id, role=role, granted_by_id=actor.id, granted_at=this_hour(rt)))
    db.flush()
    audit.record(
        db=db,
        rt=rt,
        actor=actor,
        action="role.granted",
        subject=f"account {user.id}",
        detail={"role": role.value, "account": user.display_name},
    )
    return role


def revoke_role(*, db: Session, rt: Runtime, actor: User, user: User, role: Role) -> None:
    grant = next((grant for grant in user.roles if grant.role == role), None)
    if grant is None:
        raise Conflict(Message(DOES_NOT_HOLD[role], name=user.display_name))
    if role is Role.admin:
        admins = db.scalar(select(func.count()).select_from(RoleGrant).where(RoleGrant.role == Role.admin)) or 0
        if admins <= 1:
            raise Conflict(N_("This is the last admin: grant the role to someone else before removing it here."))
    user.roles.remove(grant)
    db.flush()
    audit.record(
        db=db,
        rt=rt,
        actor=actor,
        action="role.revoked",
        subject=f"account {user.id}",
        detail={"role": role.value, "account": user.display_name},
    )


def create_admin(*, db: Session, rt: Runtime, raw_email: str, display_name: str, password: str | None) -> User:
    """Create (or promote) a verified admin account: the first admin of a deployment comes from the CLI."""
    email = normalize_email(db=db, rt=rt, raw=raw_email)
    if password is not None:
        check_password(password, rt=rt, email=email)
    now = this_hour(rt)
    user = get_by_email(db=db, email=email)
    if user is None:
        user = User(email=email, display_name=display_name, created_at=now, roles=[])
        db.add(user)
        db.flush()
    user.email_verified_at = user.email_verified_at or now
    if password is not None:
        user.password_hash = hash_password(password)
    if not any(grant.role == Role.admin for grant in user.roles):
        user.roles.append(RoleGrant(user_id=user.id, role=Role.admin, granted_by_id=None, granted_at=now))
        db.flush()
        audit.record(
            db=db,
            rt=rt,
            actor=None,
            action="role.granted",
            subject=f"account {user.id}",
            detail={"role": "admin", "account": user.display_name, "by": "command line"},
        )
    db.flush()
    return user
