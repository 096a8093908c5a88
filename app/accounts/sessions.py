"""Server-side sessions: a random id in the cookie, its digest in the table."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session, joinedload

from app.core.clock import to_the_hour
from app.core.security import SESSION_COOKIE, new_token, token_digest
from app.models.accounts import User, UserSession

__all__ = ["SESSION_COOKIE"]

# Every signed-in request runs this; built once, with bound parameters, so a request does not rebuild it.
_SESSION_USER = (
    select(UserSession)
    .where(UserSession.id_digest == bindparam("digest"), UserSession.expires_at > bindparam("now"))
    .options(joinedload(UserSession.user).joinedload(User.roles))
)


def cookie(request: Request) -> str | None:
    """The session id this browser sent, if any (what anonymous comments' edit rights are keyed by)."""
    return request.cookies.get(SESSION_COOKIE)


def user_for_cookie(*, db: Session, cookie: str | None, now: datetime) -> User | None:
    if not cookie or len(cookie) > 128:
        return None
    row = db.execute(_SESSION_USER, {"digest": token_digest(cookie), "now": now}).unique().scalar_one_or_none()
    return row.user if row else None


def start(*, db: Session, user: User, now: datetime, days: int) -> str:
    """Open a new session for `user` and return the cookie value (always a fresh id: no fixation).

    The row keeps the hour it was opened in, and expires `days` after that hour: a sign-in to the microsecond
    named the person behind an anonymous action sent a moment later. The session ends up to an hour before
    the cookie does; nothing needs it to the minute.
    """
    session_id = new_token()
    opened = to_the_hour(now)
    db.add(
        UserSession(
            id_digest=token_digest(session_id),
            user_id=user.id,
            created_at=opened,
            expires_at=opened + timedelta(days=days),
        )
    )
    db.flush()
    return session_id


def end(*, db: Session, cookie: str | None) -> None:
    if cookie:
        db.execute(delete(UserSession).where(UserSession.id_digest == token_digest(cookie)))


def end_all(*, db: Session, user: User) -> None:
    db.execute(delete(UserSession).where(UserSession.user_id == user.id))


def set_cookie(response: Response, *, session_id: str, days: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=days * 86400, httponly=True, samesite="lax", secure=secure, path="/"
    )


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
