"""Accounts, their roles, their sessions and the one-time codes mailed to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, ColumnElement, ForeignKey, Index, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.core.crypto import Sealed, blind_index, blind_indexes
from app.core.database import Base, str_enum


class Role(StrEnum):
    """Roles granted by an admin. Every verified account is a worker; the others are added on top."""

    worker = "worker"
    responder = "responder"
    moderator = "moderator"
    admin = "admin"


GRANTABLE_ROLES = (Role.responder, Role.moderator, Role.admin)


class CodePurpose(StrEnum):
    verify_email = "verify_email"
    sign_in = "sign_in"
    reset_password = "reset_password"
    verify_notification_email = "verify_notification_email"


def email_indexes(address: str) -> tuple[str, str]:
    """The blind indexes of an address and of its domain (addresses are stored normalized, lower case)."""
    return (blind_index("email", address.lower()), blind_index("email-domain", address.rpartition("@")[2].lower()))


def account_values(*, email: str, **values: object) -> dict[str, object]:
    """A row for a bulk `insert(User)` (which skips the model's own indexing): the indexes included."""
    index, domain_index = email_indexes(email)
    return {"email": email, "email_index": index, "email_domain_index": domain_index, **values}


def address_lookup(address: str) -> ColumnElement[bool]:
    """A WHERE clause finding an account by address (under every index key this process knows)."""
    return User.email_index.in_(blind_indexes("email", address.lower()))


def domain_lookup(domain: str) -> ColumnElement[bool]:
    return User.email_domain_index.in_(blind_indexes("email-domain", domain.lower().lstrip("@")))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Sealed at rest (app/core/crypto.py): a dump shows neither addresses nor names. An address is found
    # through its blind index; a whole domain through the domain's (voiding the signatures of a domain).
    email: Mapped[str] = mapped_column("email_sealed", Sealed("users.email"))
    email_index: Mapped[str] = mapped_column(String(64), unique=True)
    email_domain_index: Mapped[str] = mapped_column(String(64), index=True)
    display_name: Mapped[str] = mapped_column("display_name_sealed", Sealed("users.display_name"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Every time in this module's rows is the hour it falls in (one-time codes' deadlines excepted, see
    # OneTimeCode): a sign-in or a verification to the second dated the anonymous action that followed it.
    email_verified_at: Mapped[datetime | None]
    notification_email: Mapped[str | None] = mapped_column(
        "notification_email_sealed", Sealed("users.notification_email")
    )
    notification_email_verified_at: Mapped[datetime | None]
    # Mail me when someone replies to one of my (named) comments.
    notify_comment_replies: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime]

    roles: Mapped[list[RoleGrant]] = relationship(
        lazy="raise", cascade="all, delete-orphan", foreign_keys="RoleGrant.user_id"
    )

    @validates("email")
    def _index_email(self, _key: str, address: str) -> str:
        self.email_index, self.email_domain_index = email_indexes(address)
        return address

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def role_set(self) -> frozenset[Role]:
        granted = {Role(grant.role) for grant in self.roles}
        return frozenset(granted | {Role.worker}) if self.is_verified else frozenset(granted)

    def has_role(self, role: Role) -> bool:
        return role in self.role_set

    @property
    def notification_address(self) -> str:
        """Where platform mail goes: the personal address once verified, the work address otherwise."""
        if self.notification_email and self.notification_email_verified_at:
            return self.notification_email
        return self.email


@dataclass(frozen=True)
class Viewer:
    """A snapshot of the signed-in account for pages: still readable after the request's transaction ends."""

    id: int
    email: str
    display_name: str
    roles: frozenset[Role]
    is_verified: bool
    notification_email: str | None
    notification_email_verified: bool
    notify_comment_replies: bool

    @classmethod
    def of(cls, user: User) -> Viewer:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            roles=user.role_set,
            is_verified=user.is_verified,
            notification_email=user.notification_email,
            notification_email_verified=user.notification_email_verified_at is not None,
            notify_comment_replies=user.notify_comment_replies,
        )

    def has_role(self, role: Role | str) -> bool:
        """Templates name the role as a string; a name that is no role fails here instead of answering no."""
        return Role(role) in self.roles


class RoleGrant(Base):
    __tablename__ = "role_grants"
    __table_args__ = (CheckConstraint("role IN ('responder', 'moderator', 'admin')", name="grantable_role"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 20), primary_key=True)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime]


class UserSession(Base):
    """A server-side session. The cookie holds a random id; the table holds only its SHA-256."""

    __tablename__ = "user_sessions"

    id_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The hour the session was opened in, and that hour plus the session's days (app/accounts/sessions.py).
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship(lazy="raise")


class OneTimeCode(Base):
    """A code (typed) and a link token (clicked) mailed together; both stored as keyed digests only."""

    __tablename__ = "one_time_codes"
    __table_args__ = (Index("ix_one_time_codes_user_purpose", "user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[CodePurpose] = mapped_column(str_enum(CodePurpose, 32))
    code_digest: Mapped[str] = mapped_column(String(64))
    link_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The address the code was sent to (the personal address while it is being verified).
    sent_to: Mapped[str] = mapped_column("sent_to_sealed", Sealed("one_time_codes.sent_to"))
    # Requested and used: the hour. The deadline needs minutes, so it is the promised lifetime rounded up to
    # the next five-minute mark (accounts/service.py, CODE_DEADLINE_STEP): no finer than that is kept.
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # What a sign-up chose, applied only when this code is used: the mailbox owner decides.
    pending_password_hash: Mapped[str | None] = mapped_column(String(255))
    pending_display_name: Mapped[str | None] = mapped_column(
        "pending_display_name_sealed", Sealed("one_time_codes.pending_display_name")
    )
