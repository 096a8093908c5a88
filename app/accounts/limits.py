"""How account requests are limited without letting a stranger lock the owner out (issue #21, finding 6).

A limit per address alone is a weapon: eleven wrong passwords, or five reset requests, from anyone kept the
owner out. So failures and requests count per (address, browser), the browser being its CSRF seed cookie, and
per address under a much higher ceiling. A correct password always passes the per-address ceiling (past it, a
sign-in only waits); the owner is mailed, at most once an hour, when failures pile up. Wrong passwords across
all addresses share one budget: when they spike (one password tried against many addresses), every sign-in
waits a little. Nothing counts per client address: a whole company shares a few.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from app.core.runtime import Runtime
from app.mail import service as mail
from app.models.accounts import User

EVERYONE = "everyone"
NOTICE_RULE = "1/hour"

# Replaced in tests, which count the waits rather than sit through them.
pause = time.sleep


def _per_browser(address: str, browser: str) -> str:
    return f"{address}\n{browser}"


def before_sign_in(*, rt: Runtime, address: str, browser: str) -> None:
    """Refuse a browser that guessed too often for this address; slow every attempt during a spike."""
    rt.limiter.refuse_if_exceeded(
        action="sign-in-failure", subject=_per_browser(address, browser), rule=rt.settings.rate_limit_sign_in
    )
    spike = rt.limiter.exceeded(
        action="sign-in-failures-everyone", subject=EVERYONE, rule=rt.settings.sign_in_failure_budget
    )
    besieged = rt.limiter.exceeded(
        action="sign-in-failure-address", subject=address, rule=rt.settings.rate_limit_sign_in_address
    )
    if spike or besieged:
        pause(rt.settings.sign_in_slowdown_seconds)


def sign_in_failed(*, db: Session, rt: Runtime, address: str, browser: str, owner: User | None) -> None:
    """Count a wrong password; tell the owner when a browser or the address has used up its tries."""
    rt.limiter.count(action="sign-in-failures-everyone", subject=EVERYONE, rule=rt.settings.sign_in_failure_budget)
    counted = [
        ("sign-in-failure", _per_browser(address, browser), rt.settings.rate_limit_sign_in),
        ("sign-in-failure-address", address, rt.settings.rate_limit_sign_in_address),
    ]
    for action, subject, rule in counted:
        rt.limiter.count(action=action, subject=subject, rule=rule)
    stopped = any(rt.limiter.exceeded(action=action, subject=subject, rule=rule) for action, subject, rule in counted)
    if stopped and owner is not None and owner.is_verified:
        _tell_owner(db=db, rt=rt, owner=owner)


def _tell_owner(*, db: Session, rt: Runtime, owner: User) -> None:
    if rt.limiter.count(action="sign-in-failure-notice", subject=owner.email, rule=NOTICE_RULE):
        return  # already told within the hour
    mail.queue(
        db=db,
        templates=rt.templates,
        to_address=owner.notification_address,
        template="sign_in_failures",
        now=rt.clock.now(),
        context={"user": owner, "base_url": rt.settings.base_url.rstrip("/")},
    )


def code_request(*, rt: Runtime, action: str, address: str, browser: str, rule: str) -> None:
    """Count a request that mails the address (a code, a link): per browser, and per address much higher."""
    rt.limiter.hit(action=action, subject=_per_browser(address, browser), rule=rule)
    rt.limiter.hit(action=f"{action}-address", subject=address, rule=rt.settings.rate_limit_code_request_address)
