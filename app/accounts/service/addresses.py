"""Finding accounts, and the addresses and passwords they take."""

from __future__ import annotations

from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.core.clock import to_the_hour
from app.core.errors import InvalidInput, NotFound
from app.core.forms import FieldCheck
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.accounts import User, address_lookup
from app.organization import service as organization


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


def check_password(password: str, *, rt: Runtime, email: str) -> None:
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
        "password": lambda raw: check_password(raw or "", rt=rt, email=""),
    }


def get_by_email(*, db: Session, email: str) -> User | None:
    return db.scalar(select(User).where(address_lookup(email)).options(selectinload(User.roles)))


def get_or_404(*, db: Session, user_id: int) -> User:
    user = db.scalar(select(User).where(User.id == user_id).options(selectinload(User.roles)))
    if user is None:
        raise NotFound(N_("There is no such account."))
    return user


def this_hour(rt: Runtime) -> datetime:
    return to_the_hour(rt.clock.now())
