"""The personal address some workers add for platform mail, confirmed by a code."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.accounts.schemas import NotificationCode, NotificationEmail
from app.accounts.service.addresses import (
    normalize_email,
    this_hour,
)
from app.accounts.service.codes import (
    EXPIRED_CODE,
    code_by_entry,
    issue_code,
    use_code,
)
from app.core.errors import Conflict, Gone, InvalidInput
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.models.accounts import CodePurpose, User


def set_notification_email(*, db: Session, rt: Runtime, user: User, form: NotificationEmail) -> None:
    address = normalize_email(db=db, rt=rt, raw=form.notification_email, field="notification_email", work_address=False)
    if address == user.email:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"notification_email": N_("That is your work address; enter a personal one.")},
        )
    rt.limiter.hit(action="code-request", subject=f"account:{user.id}", rule=rt.settings.rate_limit_code_request)
    user.notification_email = address
    user.notification_email_verified_at = None
    issue_code(
        db=db,
        rt=rt,
        user=user,
        purpose=CodePurpose.verify_notification_email,
        sent_to=address,
        template="verify_notification_email",
    )


def require_pending_notification_email(user: User) -> None:
    """A code for a personal address is only asked for while one waits for it; the page has no box for it otherwise."""
    if not user.notification_email or user.notification_email_verified_at is not None:
        raise Conflict(N_("No personal address is waiting for a code. Add one first, and we email it a code."))


def verify_notification_email(*, db: Session, rt: Runtime, user: User, form: NotificationCode) -> None:
    require_pending_notification_email(user)
    rt.limiter.hit(action="code-check", subject=f"account:{user.id}", rule=rt.settings.rate_limit_code_check)
    row = code_by_entry(db=db, rt=rt, user=user, purpose=CodePurpose.verify_notification_email, code=form.code)
    if row.sent_to != user.notification_email:
        raise Gone(EXPIRED_CODE, fields={"code": EXPIRED_CODE})
    use_code(db=db, rt=rt, row=row)
    user.notification_email_verified_at = this_hour(rt)


def remove_notification_email(*, user: User) -> None:
    user.notification_email = None
    user.notification_email_verified_at = None
