"""Turning mail off and on: the signed link in every mail a person can turn off, and the account page's settings.

The link is the authority (RFC 8058): it works signed out, and one POST turns its kind of mail off for its
petition. It names the account, the kind and the petition, nothing else: the mail it sits in was sent to that
account already, and no anonymous signature or comment is reached by any mail (anonymous signers get mail only
as followers, which names nothing they signed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import AppError, NotFound
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.mail import MailOptOut, PollMailOptOut
from app.models.mail_kinds import ACCOUNT_KINDS, MailKind
from app.models.petitions import Follow, Petition
from app.models.signatures import Signature, Visibility

# Long enough for any token this module makes; a longer one is refused before it is parsed.
TOKEN_MAX = 200


class BadUnsubscribeLink(AppError):
    status_code = 400
    code = "bad_unsubscribe_link"
    title = N_("This unsubscribe link does not work")


@dataclass(frozen=True)
class Subscription:
    """What one unsubscribe link is about: one kind of mail to one account, about one petition (or none)."""

    user: User
    kind: MailKind
    petition: Petition | None


def _serializer(rt: Runtime) -> URLSafeSerializer:
    return URLSafeSerializer(rt.keyring.key("unsubscribe").hex(), salt="unsubscribe")


def token(*, rt: Runtime, user_id: int, kind: MailKind, petition_id: int | None) -> str:
    return _serializer(rt).dumps([user_id, kind.value, petition_id])


def link(*, rt: Runtime, user_id: int, kind: MailKind, petition_id: int | None) -> str:
    return f"{rt.settings.base_url.rstrip('/')}/unsubscribe/" + token(
        rt=rt, user_id=user_id, kind=kind, petition_id=petition_id
    )


def read(*, db: Session, rt: Runtime, token: str) -> Subscription:
    """What a link turns off; a link that was changed, cut short or made up is refused in plain words."""
    try:
        if len(token) > TOKEN_MAX:
            raise BadSignature("too long")
        user_id, kind, petition_id = _serializer(rt).loads(token)
        kind = MailKind(kind)
        if not isinstance(user_id, int) or not (petition_id is None or isinstance(petition_id, int)):
            raise ValueError("not ids")
        if (petition_id is None) != (kind in ACCOUNT_KINDS):
            raise ValueError("the kind and its petition do not go together")
    except (BadSignature, ValueError, TypeError):
        raise BadUnsubscribeLink(
            N_(
                "This unsubscribe link is not one we sent, or part of it is missing. Copy the "
                "whole link from the email, or choose your mail on your account page."
            )
        ) from None
    user = db.get(User, user_id)
    petition = db.get(Petition, petition_id) if petition_id is not None else None
    if user is None or (petition_id is not None and petition is None):
        raise NotFound(
            N_("The account or petition this link was for no longer exists, so no more mail comes about it.")
        )
    return Subscription(user=user, kind=kind, petition=petition)


def is_off(*, db: Session, subscription: Subscription) -> bool:
    if subscription.kind is MailKind.replies:
        return not subscription.user.notify_comment_replies
    if subscription.kind is MailKind.polls:
        return db.get(PollMailOptOut, subscription.user.id) is not None
    assert subscription.petition is not None
    return db.get(MailOptOut, (subscription.user.id, subscription.petition.id, subscription.kind.value)) is not None


def turn_off(*, db: Session, rt: Runtime, user: User, kind: MailKind, petition_id: int | None) -> None:
    """Stop one kind of mail (idempotent: a second click, or a mail client's POST and then the person's, is
    harmless)."""
    if kind is MailKind.replies:
        user.notify_comment_replies = False
        db.flush()
        return
    opt_out: MailOptOut | PollMailOptOut
    if kind is MailKind.polls:
        if db.get(PollMailOptOut, user.id) is not None:
            return
        opt_out = PollMailOptOut(user_id=user.id, created_on=rt.clock.now().date())
    else:
        assert petition_id is not None
        if db.get(MailOptOut, (user.id, petition_id, kind.value)) is not None:
            return
        opt_out = MailOptOut(
            user_id=user.id, petition_id=petition_id, kind=kind.value, created_on=rt.clock.now().date()
        )
    try:
        with db.begin_nested():
            db.add(opt_out)
    except IntegrityError:
        pass  # the same link, clicked twice at once: it is off either way


def turn_on(*, db: Session, user: User, kind: MailKind, petition_id: int | None) -> None:
    if kind is MailKind.replies:
        user.notify_comment_replies = True
    elif kind is MailKind.polls:
        db.execute(delete(PollMailOptOut).where(PollMailOptOut.user_id == user.id))
    else:
        db.execute(
            delete(MailOptOut).where(
                MailOptOut.user_id == user.id, MailOptOut.petition_id == petition_id, MailOptOut.kind == kind.value
            )
        )
    db.flush()


def turned_off(*, db: Session, kind: MailKind, petition_id: int, user_ids: Iterable[int]) -> set[int]:
    """Which of these accounts turned this kind of mail about this petition off: one query for a whole batch."""
    ids = list(user_ids)
    if not ids:
        return set()
    return set(
        db.scalars(
            select(MailOptOut.user_id).where(
                MailOptOut.petition_id == petition_id, MailOptOut.kind == kind.value, MailOptOut.user_id.in_(ids)
            )
        )
    )


def polls_turned_off(*, db: Session, user_ids: Iterable[int]) -> set[int]:
    """Which of these accounts turned mail about polls opening off: one query for a whole batch."""
    ids = list(user_ids)
    if not ids:
        return set()
    return set(db.scalars(select(PollMailOptOut.user_id).where(PollMailOptOut.user_id.in_(ids))))


def opt_outs(*, db: Session, user: User) -> set[tuple[int, str]]:
    """(petition id, kind) pairs this account turned off."""
    return {
        (petition_id, kind)
        for petition_id, kind in db.execute(
            select(MailOptOut.petition_id, MailOptOut.kind).where(MailOptOut.user_id == user.id)
        )
    }


def stop_news(*, db: Session, rt: Runtime, user: User, petition_id: int) -> None:
    """Stop a petition's news: unfollow it, stop the updates asked for when signing, and keep it off even as an
    organizer (who hears of responses by role)."""
    db.execute(delete(Follow).where(Follow.user_id == user.id, Follow.petition_id == petition_id))
    db.execute(
        update(Signature)
        .where(
            Signature.account_id == user.id,
            Signature.petition_id == petition_id,
            Signature.visibility != Visibility.anonymous,
        )
        .values(notify_updates=False)
        .execution_options(synchronize_session=False)
    )
    turn_off(db=db, rt=rt, user=user, kind=MailKind.news, petition_id=petition_id)
