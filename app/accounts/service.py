"""Account rules: sign-up, verification, sign-in, password reset, notification address, roles.

Replies never reveal whether an address has an account: requests for codes and links answer the same way
either way, and the owner of an existing account is told by email instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from app.accounts import limits, sessions
from app.accounts.models import GRANTABLE_ROLES, CodePurpose, OneTimeCode, Role, RoleGrant, User, address_lookup
from app.accounts.schemas import CodeEntry, NewPassword, NotificationCode, NotificationEmail, SignIn, SignUp
from app.audit import service as audit
from app.core.clock import rounded_up, to_the_hour
from app.core.database import rows_changed
from app.core.errors import Conflict, Gone, InvalidInput, NotFound, SignInRequired
from app.core.forms import FieldCheck
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.security import hash_password, new_code, new_token, password_needs_rehash, token_digest, verify_password
from app.mail import service as mail
from app.organization import service as organization

WRONG_CODE = N_("That code is not right. Check the latest email from us, or ask for a new code.")
EXPIRED_CODE = "That code has expired or was already used. Ask for a new one."

# A code's deadline must be finer than the hour (it lives `code_minutes`), so it is rounded up to the next
# five-minute mark: the row then dates the request no more finely than that, and a code may live up to five
# minutes longer than promised, never shorter. Every other time of an account's rows keeps only the hour
# (_hour): a request, a use or a sign-in to the second named the author of an anonymous action sent after it.
CODE_DEADLINE_STEP = timedelta(minutes=5)

# What a mail to an address without an account says was asked for (templates/emails/no_account.txt).
ASKED = {
    CodePurpose.sign_in: N_("a sign-in link"),
    CodePurpose.reset_password: N_("a password reset link"),
    CodePurpose.verify_email: N_("a new confirmation code"),
}


@dataclass(frozen=True)
class SignedIn:
    user: User
    session_id: str


def normalize_email(*, db: Session, rt: Runtime, raw: str, field: str = "email", work_address: bool = True) -> str:
    """The address in its stored form; with `work_address`, refused unless at one of the organization's domains.

    Only joining (sign-up, a new admin) asks for an allowed domain: accounts that exist can always sign in, reset
    their password and confirm their address, so an admin who drops a domain from the rules does not lock its
    members (or themselves) out. Signing checks the domain again (organization/eligibility.py).
    """
    try:
        address = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={field: "Enter an email address like name@example.org."},
        ) from None
    local, _, domain = address.rpartition("@")
    address = f"{local.lower()}@{domain.lower()}"
    allowed = organization.current(db=db, rt=rt).allowed_email_domains
    if work_address and domain.lower() not in allowed:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={field: Message(N_("Use your work address at %(domains)s."), domains=" or ".join(allowed))},
        )
    return address


def _check_password(password: str, *, rt: Runtime, email: str) -> None:
    if len(password) < rt.settings.password_min_length:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={
                "password": Message(N_("Use at least %(length)s characters."), length=rt.settings.password_min_length)
            },
        )
    if password.strip().lower() == email.lower():
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"password": N_("Your password must not be your email address.")},
        )


def sign_up_checks(*, db: Session, rt: Runtime) -> dict[str, FieldCheck]:
    """sign_up's checks of single fields, for a page to run with the schema's: a wrong domain and a short password
    are reported together."""
    return {
        "email": lambda raw: normalize_email(db=db, rt=rt, raw=raw or ""),
        "password": lambda raw: _check_password(raw or "", rt=rt, email=""),
    }


def get_by_email(*, db: Session, email: str) -> User | None:
    return db.scalar(select(User).where(address_lookup(email)).options(selectinload(User.roles)))


def get_or_404(*, db: Session, user_id: int) -> User:
    user = db.scalar(select(User).where(User.id == user_id).options(selectinload(User.roles)))
    if user is None:
        raise NotFound(N_("There is no such account."))
    return user


def _issue_code(
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
            code_digest=_code_digest(rt, user.id, purpose, code),
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


def _hour(rt: Runtime) -> datetime:
    return to_the_hour(rt.clock.now())


def _code_digest(rt: Runtime, user_id: int, purpose: str, code: str) -> str:
    return rt.keyring.keyed_hash("one-time-code", f"{user_id}:{purpose}:{code}")


def sign_up(*, db: Session, rt: Runtime, form: SignUp, browser: str) -> None:
    email = normalize_email(db=db, rt=rt, raw=form.email)
    _check_password(form.password, rt=rt, email=email)
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
        user = User(email=email, display_name=form.display_name, created_at=_hour(rt), roles=[])
        db.add(user)
        db.flush()
    # The password and name wait on the code: whoever reads this mailbox decides the account's password,
    # so someone who signed up with another person's address first gains nothing.
    _issue_code(
        db=db,
        rt=rt,
        user=user,
        purpose=CodePurpose.verify_email,
        sent_to=email,
        template="verify_email",
        pending_password_hash=password_hash,
        pending_display_name=form.display_name,
    )


def _code_request(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> tuple[str, User | None]:
    email = normalize_email(db=db, rt=rt, raw=raw_email, work_address=False)
    limits.code_request(
        rt=rt, action="code-request", address=email, browser=browser, rule=rt.settings.rate_limit_code_request
    )
    # Without its roles: loading them was a second query only an existing account cost.
    return email, db.scalar(select(User).where(address_lookup(email)))


def _tell_no_account(*, db: Session, rt: Runtime, email: str, purpose: CodePurpose) -> None:
    """Mail an address without a confirmed account that it has none: the same work as mailing a code.

    Answering without mail took half the time, which told who had an account (issue #21). Outside the
    organization's domains no mail goes out (anyone could have us write to anyone): the work is done all the same.
    """
    context = {"asked": ASKED[purpose], "base_url": rt.settings.base_url.rstrip("/")}
    # What _issue_code does besides the mail: replace earlier codes, make a code and a link and their digests,
    # write the code's row. No account can own a row here: two statements that match no row stand in for them
    # (measured: as long as the two a code takes, where writing and deleting a row took longer).
    for _ in range(2):
        db.execute(
            update(OneTimeCode)
            .where(OneTimeCode.user_id.is_(None), OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
            .values(used_at=_hour(rt))
        )
    _code_digest(rt, 0, purpose, new_code()), token_digest(new_token())
    domain = email.rpartition("@")[2]
    send = mail.queue if domain in organization.current(db=db, rt=rt).allowed_email_domains else mail.rehearse
    send(db=db, templates=rt.templates, to_address=email, template="no_account", now=rt.clock.now(), context=context)


def resend_verification(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> None:
    email, user = _code_request(db=db, rt=rt, raw_email=raw_email, browser=browser)
    if user is None:
        _tell_no_account(db=db, rt=rt, email=email, purpose=CodePurpose.verify_email)
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
    _issue_code(
        db=db,
        rt=rt,
        user=user,
        purpose=CodePurpose.verify_email,
        sent_to=email,
        template="verify_email",
        pending_password_hash=latest.pending_password_hash if latest else None,
        pending_display_name=latest.pending_display_name if latest else None,
    )


def _live_code(db: Session, rt: Runtime, row: OneTimeCode | None) -> OneTimeCode:
    if row is None:
        raise InvalidInput(WRONG_CODE, fields={"code": WRONG_CODE})
    if row.used_at is not None or row.expires_at <= rt.clock.now():
        raise Gone(EXPIRED_CODE, fields={"code": EXPIRED_CODE})
    return row


def _code_by_entry(*, db: Session, rt: Runtime, user: User | None, purpose: CodePurpose, code: str) -> OneTimeCode:
    if user is None:
        raise InvalidInput(WRONG_CODE, fields={"code": WRONG_CODE})
    row = db.scalar(
        select(OneTimeCode).where(
            OneTimeCode.user_id == user.id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.code_digest == _code_digest(rt, user.id, purpose, code),
        )
    )
    return _live_code(db, rt, row)


def code_by_link(*, db: Session, rt: Runtime, token: str, purpose: CodePurpose) -> OneTimeCode:
    """The code row a mailed link points at, if it is still usable. Reading it changes nothing."""
    if len(token) > 128:
        raise InvalidInput(WRONG_CODE)
    row = db.scalar(
        select(OneTimeCode).where(OneTimeCode.link_digest == token_digest(token), OneTimeCode.purpose == purpose)
    )
    if row is None:
        raise NotFound(N_("This link is not valid. Use the latest email from us, or ask for a new one."))
    return _live_code(db, rt, row)


def _use(*, db: Session, rt: Runtime, row: OneTimeCode) -> None:
    """Mark a code used, once: one compare-and-set, so requests racing with the same link or code cannot both
    pass (ten concurrent uses of one sign-in link opened four sessions, issue #21)."""
    used = db.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > rt.clock.now())
        .values(used_at=_hour(rt))
    )
    if rows_changed(used) != 1:
        raise Gone(EXPIRED_CODE, fields={"code": EXPIRED_CODE})


def _revoke_codes(*, db: Session, rt: Runtime, user: User) -> None:
    """Every code and link still out for the account stops working."""
    db.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.used_at.is_(None))
        .values(used_at=_hour(rt))
    )


def _start_session(*, db: Session, rt: Runtime, user: User) -> SignedIn:
    session_id = sessions.start(db=db, user=user, now=rt.clock.now(), days=rt.settings.session_days)
    return SignedIn(user=user, session_id=session_id)


def _complete_verification(*, db: Session, rt: Runtime, row: OneTimeCode) -> SignedIn:
    _use(db=db, rt=rt, row=row)
    user = get_or_404(db=db, user_id=row.user_id)
    now = _hour(rt)
    user.email_verified_at = user.email_verified_at or now
    if row.pending_password_hash:
        user.password_hash = row.pending_password_hash
    if row.pending_display_name:
        user.display_name = row.pending_display_name
    return _start_session(db=db, rt=rt, user=user)


def verify_by_code(*, db: Session, rt: Runtime, form: CodeEntry) -> SignedIn:
    email = normalize_email(db=db, rt=rt, raw=form.email, work_address=False)
    rt.limiter.hit(action="code-check", subject=email, rule=rt.settings.rate_limit_code_check)
    user = get_by_email(db=db, email=email)
    row = _code_by_entry(db=db, rt=rt, user=user, purpose=CodePurpose.verify_email, code=form.code)
    return _complete_verification(db=db, rt=rt, row=row)


def verify_by_link(*, db: Session, rt: Runtime, token: str) -> SignedIn:
    row = code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.verify_email)
    return _complete_verification(db=db, rt=rt, row=row)


def sign_in(*, db: Session, rt: Runtime, form: SignIn, browser: str) -> SignedIn:
    """Sign in with a password; `browser` is the browser's CSRF seed, by which wrong passwords are counted."""
    email = normalize_email(db=db, rt=rt, raw=form.email, work_address=False)
    limits.before_sign_in(rt=rt, address=email, browser=browser)
    user = get_by_email(db=db, email=email)
    password_ok = verify_password(form.password, user.password_hash if user else None)
    if user is None or not password_ok or not user.is_verified:
        limits.sign_in_failed(db=db, rt=rt, address=email, browser=browser, owner=user)
        raise SignInRequired(
            "That email address and password do not match. If you signed up recently, confirm your address "
            "with the code we sent first; or ask for a sign-in link.",
            fields={"password": N_("Check your password.")},
        )
    rt.limiter.hit(action="sign-in-account", subject=str(user.id), rule=rt.settings.rate_limit_sign_in)
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(form.password)
    return _start_session(db=db, rt=rt, user=user)


def request_sign_in_link(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> None:
    email, user = _code_request(db=db, rt=rt, raw_email=raw_email, browser=browser)
    if user is not None and user.is_verified:
        _issue_code(db=db, rt=rt, user=user, purpose=CodePurpose.sign_in, sent_to=user.email, template="sign_in_link")
    else:
        _tell_no_account(db=db, rt=rt, email=email, purpose=CodePurpose.sign_in)


def sign_in_by_link(*, db: Session, rt: Runtime, token: str) -> SignedIn:
    row = code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.sign_in)
    _use(db=db, rt=rt, row=row)
    return _start_session(db=db, rt=rt, user=get_or_404(db=db, user_id=row.user_id))


def request_password_reset(*, db: Session, rt: Runtime, raw_email: str, browser: str) -> None:
    email, user = _code_request(db=db, rt=rt, raw_email=raw_email, browser=browser)
    if user is not None and user.is_verified:
        _issue_code(
            db=db, rt=rt, user=user, purpose=CodePurpose.reset_password, sent_to=user.email, template="reset_password"
        )
    else:
        _tell_no_account(db=db, rt=rt, email=email, purpose=CodePurpose.reset_password)


def reset_password(*, db: Session, rt: Runtime, token: str, form: NewPassword) -> SignedIn:
    row = code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.reset_password)
    user = get_or_404(db=db, user_id=row.user_id)
    _check_password(form.password, rt=rt, email=user.email)
    _use(db=db, rt=rt, row=row)
    user.password_hash = hash_password(form.password)
    # Whoever knew the old password is signed out everywhere, and any link or code they asked for before
    # stops working: a sign-in link requested before the reset still opened a session after it (issue #21).
    sessions.end_all(db=db, user=user)
    _revoke_codes(db=db, rt=rt, user=user)
    return _start_session(db=db, rt=rt, user=user)


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
    _issue_code(
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
    row = _code_by_entry(db=db, rt=rt, user=user, purpose=CodePurpose.verify_notification_email, code=form.code)
    if row.sent_to != user.notification_email:
        raise Gone(EXPIRED_CODE, fields={"code": EXPIRED_CODE})
    _use(db=db, rt=rt, row=row)
    user.notification_email_verified_at = _hour(rt)


def remove_notification_email(*, user: User) -> None:
    user.notification_email = None
    user.notification_email_verified_at = None


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
    user.roles.append(RoleGrant(user_id=user.id, role=role, granted_by_id=actor.id, granted_at=_hour(rt)))
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
        _check_password(password, rt=rt, email=email)
    now = _hour(rt)
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


def account_read(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "verified": user.is_verified,
        "roles": sorted(user.role_set),
        "notification_email": user.notification_email,
        "notification_email_verified": user.notification_email_verified_at is not None,
        "created_at": user.created_at,
    }
