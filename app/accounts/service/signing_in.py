"""Signing up, confirming the address, signing in with a password or a link, resetting the password."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts import limits, sessions
from app.accounts.schemas import CodeEntry, NewPassword, SignIn, SignUp
from app.accounts.service.addresses import (
    check_password,
    get_by_email,
    get_or_404,
    normalize_email,
    this_hour,
)
from app.accounts.service.codes import (
    code_by_entry,
    code_by_link,
    code_request,
    issue_code,
    revoke_codes,
    tell_no_account,
    use_code,
)
from app.core.errors import SignInRequired
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.core.security import hash_password, password_needs_rehash, verify_password
from app.mail import service as mail
from app.models.accounts import CodePurpose, OneTimeCode, User


@dataclass(frozen=True)
class SignedIn:
    user: User
    session_id: str


def sign_up(*, db: Session, rt: Runtime, form: SignUp, browser: str) -> None:
    email = normalize_email(db=db, rt=rt, raw=form.email)
    check_password(form.password, rt=rt, email=email)
    limits.code_request(rt=rt, action="sign-up", address=email, browser=browser, rule=rt.settings.rate_limit_sign_up)
    # Hashed whether or not the address has an account, and each answer queues one mail: returning early for
    # an existing account took 10 ms against 140 ms, which told anyone who had an account (issue #21).
    password_hash = hash_password(form.password)
    user = get_by_email(db=db, email=email)
    if user is not None and user.is_verified:
        mail.queue(
            db=db,
            templates=rt.templates,
            to_address=user.email,
            template="account_exists",
            now=rt.clock.now(),
            context={"user": user, "base_url": rt.settings.base_url.rstrip("/")},
        )
        return
    if user is None:
        user = User(email=email, display_name=form.display_name, created_at=this_hour(rt), roles=[])
        db.add(user)
        db.flush()
    # The password and name wait on the code: whoever reads this mailbox decides the account's password,
    # so someone who signed up with another person's address first gains nothing.
    issue_code(
        db=db,
        rt=rt,
        user=user,
        purpose=CodePurpose.verify_email,
        sent_to=email,
        template="verify_email",
        pending_password_hash=password_hash,
        pending_display_name=form.display_name,
    )


def resend_verification(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> None:
    email, user = code_request(db=db, rt=rt, raw_email=raw_email, browser=browser)
    if user is None:
        tell_no_account(db=db, rt=rt, email=email, purpose=CodePurpose.verify_email)
        return
    if user.is_verified:
        mail.queue(
            db=db,
            templates=rt.templates,
            to_address=user.email,
            template="account_exists",
            now=rt.clock.now(),
            context={"user": user, "base_url": rt.settings.base_url.rstrip("/")},
        )
        return
    latest = db.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == CodePurpose.verify_email)
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    )
    issue_code(
        db=db,
        rt=rt,
        user=user,
        purpose=CodePurpose.verify_email,
        sent_to=email,
        template="verify_email",
        pending_password_hash=latest.pending_password_hash if latest else None,
        pending_display_name=latest.pending_display_name if latest else None,
    )


def start_session(*, db: Session, rt: Runtime, user: User) -> SignedIn:
    session_id = sessions.start(db=db, user=user, now=rt.clock.now(), days=rt.settings.session_days)
    return SignedIn(user=user, session_id=session_id)


def complete_verification(*, db: Session, rt: Runtime, row: OneTimeCode) -> SignedIn:
    use_code(db=db, rt=rt, row=row)
    user = get_or_404(db=db, user_id=row.user_id)
    now = this_hour(rt)
    user.email_verified_at = user.email_verified_at or now
    if row.pending_password_hash:
        user.password_hash = row.pending_password_hash
    if row.pending_display_name:
        user.display_name = row.pending_display_name
    return start_session(db=db, rt=rt, user=user)


def verify_by_code(*, db: Session, rt: Runtime, form: CodeEntry) -> SignedIn:
    email = normalize_email(db=db, rt=rt, raw=form.email, work_address=False)
    rt.limiter.hit(action="code-check", subject=email, rule=rt.settings.rate_limit_code_check)
    user = get_by_email(db=db, email=email)
    row = code_by_entry(db=db, rt=rt, user=user, purpose=CodePurpose.verify_email, code=form.code)
    return complete_verification(db=db, rt=rt, row=row)


def verify_by_link(*, db: Session, rt: Runtime, token: str) -> SignedIn:
    row = code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.verify_email)
    return complete_verification(db=db, rt=rt, row=row)


def sign_in(*, db: Session, rt: Runtime, form: SignIn, browser: str) -> SignedIn:
    """Sign in with a password; `browser` is the browser's CSRF seed, by which wrong passwords are counted."""
    email = normalize_email(db=db, rt=rt, raw=form.email, work_address=False)
    limits.before_sign_in(rt=rt, address=email, browser=browser)
    user = get_by_email(db=db, email=email)
    password_ok = verify_password(form.password, user.password_hash if user else None)
    if user is None or not password_ok or not user.is_verified:
        limits.sign_in_failed(db=db, rt=rt, address=email, browser=browser, owner=user)
        raise SignInRequired(
            N_(
                "That email address and password do not match. If you signed up recently, confirm your address "
                "with the code we sent first; or ask for a sign-in link."
            ),
            fields={"password": N_("Check your password.")},
        )
    rt.limiter.hit(action="sign-in-account", subject=str(user.id), rule=rt.settings.rate_limit_sign_in)
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(form.password)
    return start_session(db=db, rt=rt, user=user)


def request_sign_in_link(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> None:
    email, user = code_request(db=db, rt=rt, raw_email=raw_email, browser=browser)
    if user is not None and user.is_verified:
        issue_code(db=db, rt=rt, user=user, purpose=CodePurpose.sign_in, sent_to=user.email, template="sign_in_link")
    else:
        tell_no_account(db=db, rt=rt, email=email, purpose=CodePurpose.sign_in)


def sign_in_by_link(*, db: Session, rt: Runtime, token: str) -> SignedIn:
    row = code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.sign_in)
    use_code(db=db, rt=rt, row=row)
    return start_session(db=db, rt=rt, user=get_or_404(db=db, user_id=row.user_id))


def request_password_reset(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> None:
    email, user = code_request(db=db, rt=rt, raw_email=raw_email, browser=browser)
    if user is not None and user.is_verified:
        issue_code(
            db=db, rt=rt, user=user, purpose=CodePurpose.reset_password, sent_to=user.email, template="reset_password"
        )
    else:
        tell_no_account(db=db, rt=rt, email=email, purpose=CodePurpose.reset_password)


def reset_password(*, db: Session, rt: Runtime, token: str, form: NewPassword) -> SignedIn:
    row = code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.reset_password)
    user = get_or_404(db=db, user_id=row.user_id)
    check_password(form.password, rt=rt, email=user.email)
    use_code(db=db, rt=rt, row=row)
    user.password_hash = hash_password(form.password)
    # Whoever knew the old password is signed out everywhere, and any link or code they asked for before
    # stops working: a sign-in link requested before the reset still opened a session after it (issue #21).
    sessions.end_all(db=db, user=user)
    revoke_codes(db=db, rt=rt, user=user)
    return start_session(db=db, rt=rt, user=user)
