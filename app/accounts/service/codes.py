"""One-time codes and links: issuing them by mail, and using each once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.accounts import limits
from app.accounts.service.addresses import (
    normalize_email,
    this_hour,
)
from app.core.clock import rounded_up, to_the_hour
from app.core.database import rows_changed
from app.core.errors import Gone, InvalidInput, NotFound
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.core.security import new_code, new_token, token_digest
from app.mail import service as mail
from app.models.accounts import CodePurpose, OneTimeCode, User, address_lookup
from app.organization import service as organization

WRONG_CODE = N_("That code is not right. Check the latest email from us, or ask for a new code.")
EXPIRED_CODE = N_("That code has expired or was already used. Ask for a new one.")


# A code's deadline must be finer than the hour (it lives `code_minutes`), so it is rounded up to the next
# five-minute mark: the row then dates the request no more finely than that, and a code may live up to five
# minutes longer than promised, never shorter. Every other time of an account's rows keeps only the hour
# (this_hour): a request, a use or a sign-in to the second named the author of an anonymous action sent after it.
CODE_DEADLINE_STEP = timedelta(minutes=5)
# What a mail to an address without an account says was asked for (templates/emails/no_account.txt).
ASKED = {
    CodePurpose.sign_in: N_("a sign-in link"),
    CodePurpose.reset_password: N_("a password reset link"),
    CodePurpose.verify_email: N_("a new confirmation code"),
}


def issue_code(
    *,
    db: Session,
    rt: Runtime,
    user: User,
    purpose: CodePurpose,
    sent_to: str,
    template: str,
    pending_password_hash: str | None = None,
    pending_display_name: str | None = None,
) -> None:
    now = rt.clock.now()
    # A new code replaces any earlier one of the same purpose: only the latest email works.
    db.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
        .values(used_at=to_the_hour(now))
    )
    code, link = new_code(), new_token()
    deadline = rounded_up(now + timedelta(minutes=rt.settings.code_minutes), CODE_DEADLINE_STEP)
    db.add(
        OneTimeCode(
            user_id=user.id,
            purpose=purpose,
            code_digest=code_digest(rt, user.id, purpose, code),
            link_digest=token_digest(link),
            sent_to=sent_to,
            created_at=to_the_hour(now),
            expires_at=deadline,
            pending_password_hash=pending_password_hash,
            pending_display_name=pending_display_name,
        )
    )
    mail.queue(
        db=db,
        templates=rt.templates,
        to_address=sent_to,
        template=template,
        now=now,
        context={
            "user": user,
            "code": code,
            "link_token": link,
            "base_url": rt.settings.base_url.rstrip("/"),
            "minutes": rt.settings.code_minutes,
            "organization_name": rt.settings.organization_name,
        },
    )


def code_digest(rt: Runtime, user_id: int, purpose: str, code: str) -> str:
    return rt.keyring.keyed_hash("one-time-code", f"{user_id}:{purpose}:{code}")


def code_request(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> tuple[str, User | None]:
    email = normalize_email(db=db, rt=rt, raw=raw_email, work_address=False)
    limits.code_request(
        rt=rt, action="code-request", address=email, browser=browser, rule=rt.settings.rate_limit_code_request
    )
    # Without its roles: loading them was a second query only an existing account cost.
    return email, db.scalar(select(User).where(address_lookup(email)))


def tell_no_account(*, db: Session, rt: Runtime, email: str, purpose: CodePurpose) -> None:
    """Mail an address without a confirmed account that it has none: the same work as mailing a code.

    Answering without mail took half the time, which told who had an account (issue #21). Outside the
    organization's domains no mail goes out (anyone could have us write to anyone): the work is done all the same.
    """
    context = {"asked": ASKED[purpose], "base_url": rt.settings.base_url.rstrip("/")}
    # What issue_code does besides the mail: replace earlier codes, make a code and a link and their digests,
    # write the code's row. No account can own a row here: two statements that match no row stand in for them
    # (measured: as long as the two a code takes, where writing and deleting a row took longer).
    for _ in range(2):
        db.execute(
            update(OneTimeCode)
            .where(OneTimeCode.user_id.is_(None), OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
            .values(used_at=this_hour(rt))
        )
    code_digest(rt, 0, purpose, new_code()), token_digest(new_token())
    domain = email.rpartition("@")[2]
    send = mail.queue if domain in organization.current(db=db, rt=rt).allowed_email_domains else mail.rehearse
    send(db=db, templates=rt.templates, to_address=email, template="no_account", now=rt.clock.now(), context=context)


def live_code(db: Session, rt: Runtime, row: OneTimeCode | None) -> OneTimeCode:
    if row is None:
        raise InvalidInput(WRONG_CODE, fields={"code": WRONG_CODE})
    if row.used_at is not None or row.expires_at <= rt.clock.now():
        raise Gone(EXPIRED_CODE, fields={"code": EXPIRED_CODE})
    return row


def code_by_entry(*, db: Session, rt: Runtime, user: User | None, purpose: CodePurpose, code: str) -> OneTimeCode:
    if user is None:
        raise InvalidInput(WRONG_CODE, fields={"code": WRONG_CODE})
    row = db.scalar(
        select(OneTimeCode).where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.code_digest == code_digest(rt, user.id, purpose, code),
        )
    )
    return live_code(db, rt, row)


def code_by_link(*, db: Session, rt: Runtime, token: str, purpose: CodePurpose) -> OneTimeCode:
    """The code row a mailed link points at, if it is still usable. Reading it changes nothing."""
    if len(token) > 128:
        raise InvalidInput(WRONG_CODE)
    row = db.scalar(
        select(OneTimeCode).where(OneTimeCode.link_digest == token_digest(token), OneTimeCode.purpose == purpose)
    )
    if row is None:
        raise NotFound(N_("This link is not valid. Use the latest email from us, or ask for a new one."))
    return live_code(db, rt, row)


def use_code(*, db: Session, rt: Runtime, row: OneTimeCode) -> None:
    """Mark a code used, once: one compare-and-set, so requests racing with the same link or code cannot both
    pass (ten concurrent uses of one sign-in link opened four sessions, issue #21)."""
    used = db.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > rt.clock.now())
        .values(used_at=this_hour(rt))
    )
    if rows_changed(used) != 1:
        raise Gone(EXPIRED_CODE, fields={"code": EXPIRED_CODE})


def revoke_codes(*, db: Session, rt: Runtime, user: User) -> None:
    """Every code and link still out for the account stops working."""
    db.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None))
        .values(used_at=this_hour(rt))
    )
