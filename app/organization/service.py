"""The organization's rules in force: what an admin set, else the deployment's settings.

Read on hot paths (every sign-up and signature checks the domains), so each process remembers them for a few
seconds; the process that saves a change forgets them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.organization import OrganizationRules
from app.organization.schemas import RulesForm

ROW_ID = 1
CACHE_KEY = "organization-rules"
# Other server processes apply a change within this many seconds.
CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class Rules:
    allowed_email_domains: tuple[str, ...]
    response_threshold: int
    escalation_threshold: int
    response_days: int
    sponsors_required: int


def defaults(*, rt: Runtime) -> Rules:
    settings = rt.settings
    return Rules(
        allowed_email_domains=tuple(settings.allowed_email_domains),
        response_threshold=settings.response_threshold,
        escalation_threshold=settings.escalation_threshold,
        response_days=settings.response_days,
        sponsors_required=settings.sponsors_required,
    )


@dataclass(frozen=True)
class _Overrides:
    """What an admin set (None: the deployment's setting applies)."""

    allowed_email_domains: tuple[str, ...] | None = None
    response_threshold: int | None = None
    escalation_threshold: int | None = None
    response_days: int | None = None
    sponsors_required: int | None = None


def _overrides(db: Session) -> _Overrides:
    row = db.get(OrganizationRules, ROW_ID)
    if row is None:
        return _Overrides()
    return _Overrides(
        allowed_email_domains=tuple(row.allowed_email_domains.split(",")) if row.allowed_email_domains else None,
        response_threshold=row.response_threshold,
        escalation_threshold=row.escalation_threshold,
        response_days=row.response_days,
        sponsors_required=row.sponsors_required,
    )


def _merge(overrides: _Overrides, base: Rules) -> Rules:
    return Rules(
        **{
            field.name: getattr(base, field.name)
            if getattr(overrides, field.name) is None
            else getattr(overrides, field.name)
            for field in fields(Rules)
        }
    )


def _load(db: Session, rt: Runtime) -> Rules:
    return _merge(_overrides(db), defaults(rt=rt))


def rules_in(*, db: Session, rt: Runtime) -> Rules:
    """The rules as this transaction sees them, without the memo."""
    return _load(db, rt)


def current(*, db: Session, rt: Runtime) -> Rules:
    # The admin's overrides are remembered, not the merged rules: runtimes with other settings share the memo.
    return _merge(rt.cache.get(CACHE_KEY, lambda: _overrides(db), ttl=CACHE_SECONDS), defaults(rt=rt))


def update(*, db: Session, rt: Runtime, actor: User, form: RulesForm) -> list[str]:
    """Save the rules; the audit log records each change as before and after. Returns the changed names.

    Petitions read the rules, not the reverse: a caller that lowered `sponsors_required` moves the petitions that
    already have enough sponsors on (`petitions.service.advance_sponsored`)."""
    before = _load(db, rt)
    after = Rules(
        allowed_email_domains=form.domains,
        response_threshold=form.response_threshold,
        escalation_threshold=form.escalation_threshold,
        response_days=form.response_days,
        sponsors_required=form.sponsors_required,
    )
    changed = {
        field.name: {"from": _plain(getattr(before, field.name)), "to": _plain(getattr(after, field.name))}
        for field in fields(Rules)
        if _differs(getattr(before, field.name), getattr(after, field.name))
    }
    if not changed:
        return []
    row = db.get(OrganizationRules, ROW_ID, with_for_update=True)
    if row is None:
        row = OrganizationRules(id=ROW_ID)
        db.add(row)
    # A value equal to the deployment's setting is stored as "not set", so it follows that setting later on.
    base = defaults(rt=rt)
    for field in fields(Rules):
        value = getattr(after, field.name)
        if not _differs(value, getattr(base, field.name)):
            value = None
        elif field.name == "allowed_email_domains":
            value = ",".join(value)
        setattr(row, field.name, value)
    row.updated_at = rt.clock.now()
    row.updated_by_id = actor.id
    db.flush()
    audit.record(db=db, rt=rt, actor=actor, action="settings.changed", subject="organization rules", detail=changed)
    rt.cache.forget_changed(db, CACHE_KEY)
    return list(changed)


def _differs(one: object, other: object) -> bool:
    """Domains are a set: the same ones in another order are no change."""
    if isinstance(one, tuple) and isinstance(other, tuple):
        return set(one) != set(other)
    return one != other


def _plain(value: object) -> object:
    return ", ".join(value) if isinstance(value, tuple) else value
