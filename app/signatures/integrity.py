"""Keeping the tally honest: recounting, voiding signatures by rule, and spotting unusual signing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.audit import service as audit
from app.core.errors import Conflict, InvalidInput
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as signature_log
from app.models.accounts import User, address_lookup, domain_lookup
from app.models.petitions import Petition
from app.models.signatures import Invalidation, Signature
from app.petitions.service import record_event

MAX_RULE_ADDRESSES = 10_000


@dataclass(frozen=True)
class Drift:
    petition_id: int
    counted: int
    actual: int


def recount(*, db: Session, repair: bool) -> list[Drift]:
    """Compare every petition's counter with its counted signature rows; fix the counters when asked."""
    actual = (
        select(Signature.petition_id, func.count().label("rows"))
        .where(Signature.invalidation_id.is_(None))
        .group_by(Signature.petition_id)
        .subquery()
    )
    rows = db.execute(
        select(Petition.id, Petition.signature_count, func.coalesce(actual.c.rows, 0))
        .outerjoin(actual, actual.c.petition_id == Petition.id)
        .where(Petition.signature_count != func.coalesce(actual.c.rows, 0))
        .order_by(Petition.id)
    )
    drifts = [Drift(petition_id=pid, counted=counted, actual=real) for pid, counted, real in rows]
    if repair:
        for drift in drifts:
            db.execute(
                update(Petition)
                .where(Petition.id == drift.petition_id)
                .values(signature_count=drift.actual)
                .execution_options(synchronize_session=False)
            )
    return drifts


def parse_rule(raw: str) -> list[str]:
    """A rule is a list of addresses (one per line or separated by commas) or of whole domains (@domain)."""
    entries = sorted({part.strip().lower() for part in raw.replace(",", "\n").splitlines() if part.strip()})
    if not entries:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"rule": N_("List the addresses (or @domains) whose signatures to void.")},
        )
    if len(entries) > MAX_RULE_ADDRESSES:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"rule": Message(N_("At most %(count)s entries at once."), count=f"{MAX_RULE_ADDRESSES:,}")},
        )
    if any("@" not in entry for entry in entries):
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"rule": N_("Each entry must be an address (name@domain) or a domain (@domain).")},
        )
    return entries


def _matching(petition: Petition, entries: list[str]) -> Select[str]:
    # Addresses are sealed: they are matched through their blind indexes, whole domains through the domain's.
    condition = _rule_condition(entries)
    return (
        select(Signature.id)
        .join(User, User.id == Signature.account_id)
        .where(Signature.petition_id == petition.id, Signature.invalidation_id.is_(None), condition)
    )


def _rule_condition(entries: list[str]) -> ColumnElement[bool]:
    addresses = [entry for entry in entries if not entry.startswith("@")]
    domains = [entry for entry in entries if entry.startswith("@")]
    return or_(*[address_lookup(address) for address in addresses], *[domain_lookup(domain) for domain in domains])


def require_large_rule(*, db: Session, rt: Runtime, entries: list[str]) -> None:
    """Refuse a rule that covers fewer confirmed accounts than the reports' smallest group (issue #21).

    A count for a rule of one address answers "did this colleague sign?" (0 or 1). A rule must therefore
    cover at least `min_group_size` accounts that could have signed (confirmed addresses) before any count is
    shown or any signature voided: an unknown or unconfirmed address pads nothing. What remains is a
    moderator who already knows how the other accounts of a rule signed; each preview is in the audit log.
    """
    smallest = rt.settings.min_group_size
    covered = (
        db.scalar(
            select(func.count()).select_from(User).where(_rule_condition(entries), User.email_verified_at.is_not(None))
        )
        or 0
    )
    if covered < smallest:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={
                "rule": Message(
                    N_(
                        "A rule must cover at least %(count)s accounts with a confirmed address, so that its count "
                        "does not tell whether particular colleagues signed. Add the other addresses or use @domain."
                    ),
                    count=smallest,
                )
            },
        )


def describe_rule(entries: list[str]) -> str:
    """What the record of a rule keeps and shows: its size and its whole domains, never an address."""
    domains = [entry for entry in entries if entry.startswith("@")]
    addresses = len(entries) - len(domains)
    parts = domains[:5] + (["…"] if len(domains) > 5 else [])
    if addresses:
        parts.append(f"{addresses} address{'es' if addresses != 1 else ''}")
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: " + ", ".join(parts)


_ADDRESS = re.compile(r"[^\s,:@…]+@[^\s,…]+")


def without_addresses(rule: str) -> str:
    """A rule recorded before issue #21 listed its first addresses: the history shows "an address" instead."""
    return _ADDRESS.sub("an address", rule)


def preview(*, db: Session, rt: Runtime, petition: Petition, moderator: User, entries: list[str]) -> int:
    """How many counted signatures the rule would void (named signatures only: anonymous ones match nothing).

    A preview answers "did these addresses sign?", so a moderator could ask it about one colleague. Every
    preview is therefore in the audit log (the rule's size and the count, never the addresses), where
    admins see who asked what kind of question how often. A rule smaller than the reports' smallest group
    gets no count at all (`require_large_rule`).
    """
    require_large_rule(db=db, rt=rt, entries=entries)
    matched = db.scalar(select(func.count()).select_from(_matching(petition, entries).subquery())) or 0
    audit.record(
        db=db,
        rt=rt,
        actor=moderator,
        action="signatures.void_previewed",
        subject=f"petition {petition.id}",
        detail={
            "rule_entries": len(entries),
            "rule_domains": sum(1 for entry in entries if entry.startswith("@")),
            "matched": matched,
        },
    )
    return matched


def invalidate(
    *,
    db: Session,
    rt: Runtime,
    petition: Petition,
    moderator: User,
    entries: list[str],
    reason: str,
    expected: int | None,
) -> Invalidation:
    """Void the matching signatures, if the count is still what the moderator previewed."""
    page_changed(db, petition.id)
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"reason": N_("Say why, in at most 500 characters: it is kept on record.")},
        )
    if expected is None or expected < 0:
        raise InvalidInput(
            N_("Preview the rule first, then confirm the count it shows."),
            fields={"rule": N_("Preview the rule first.")},
        )
    # Before any count, in this answer or the refusal below: voiding is a preview too.
    require_large_rule(db=db, rt=rt, entries=entries)
    ids = list(db.scalars(_matching(petition, entries)))
    if len(ids) != expected:
        raise Conflict(
            Message(
                N_(
                    "The rule now matches %(count)s signatures, not the %(expected)s you previewed. Preview again before confirming."
                ),
                count=len(ids),
                expected=expected,
            )
        )
    if not ids:
        raise Conflict(N_("The rule matches no counted signature."))
    now = rt.clock.now()
    record = Invalidation(
        petition_id=petition.id,
        moderator_id=moderator.id,
        rule=describe_rule(entries)[:300],
        reason=reason,
        matched=len(ids),
        created_at=now,
    )
    db.add(record)
    db.flush()
    logged = (
        db.execute(
            update(Signature)
            .where(Signature.id.in_(ids))
            .values(invalidation_id=record.id)
            .returning(Signature.log_index)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    for log_index in logged:  # voided signatures leave the log's tally as they leave the count
        signature_log.withdrawn(db=db, petition_id=petition.id, log_index=log_index, reason="voided by moderators")
    set_committed_value(
        petition,
        "signature_count",
        db.execute(
            update(Petition)
            .where(Petition.id == petition.id)
            .values(signature_count=Petition.signature_count - len(ids))
            .returning(Petition.signature_count)
            .execution_options(synchronize_session=False)
        ).scalar_one(),
    )
    record_event(
        db=db,
        petition=petition,
        kind="signatures_voided",
        at=now,
        actor=moderator,
        detail=f"{len(ids)} signature{'s' if len(ids) != 1 else ''} voided: {reason}",
    )
    audit.record(
        db=db,
        rt=rt,
        actor=moderator,
        action="signatures.voided",
        subject=f"petition {petition.id}",
        # The count of entries, not the addresses: the audit log is read by admins, who must not
        # learn from it whose signature a petition held.
        detail={"rule_entries": len(entries), "matched": len(ids), "reason": reason},
    )
    return record


def invalidations(*, db: Session, petition: Petition) -> list[tuple[Invalidation, User | None]]:
    """The petition's invalidations, newest first; a rule's addresses are never shown, even an old record's."""
    rows = db.execute(
        select(Invalidation, User)
        .outerjoin(User, User.id == Invalidation.moderator_id)
        .where(Invalidation.petition_id == petition.id)
        .order_by(Invalidation.created_at.desc())
    )
    found: list[tuple[Invalidation, User | None]] = []
    for record, user in rows:
        set_committed_value(record, "rule", without_addresses(record.rule))  # shown only, never written back
        found.append((record, user))
    return found


@dataclass(frozen=True)
class VelocityAlert:
    petition: Petition
    last_hour: int
    hourly_average: float


def velocity_alerts(*, db: Session, rt: Runtime, now: datetime) -> list[VelocityAlert]:
    """Open petitions signed far faster in the last hour than their average over the day before."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    recent_start, day_start = hour - timedelta(hours=1), hour - timedelta(hours=25)
    last_hour = (
        select(Signature.petition_id, func.count().label("n"))
        .where(Signature.signed_hour >= recent_start, Signature.invalidation_id.is_(None))
        .group_by(Signature.petition_id)
        .subquery()
    )
    day = (
        select(Signature.petition_id, func.count().label("n"))
        .where(
            Signature.signed_hour >= day_start,
            Signature.signed_hour < recent_start,
            Signature.invalidation_id.is_(None),
        )
        .group_by(Signature.petition_id)
        .subquery()
    )
    rows = db.execute(
        select(Petition, last_hour.c.n, func.coalesce(day.c.n, 0))
        .join(last_hour, last_hour.c.petition_id == Petition.id)
        .outerjoin(day, day.c.petition_id == Petition.id)
        .where(Petition.state == "open", last_hour.c.n >= rt.settings.velocity_minimum)
    )
    alerts = []
    for petition, recent, previous_day in rows:
        average = previous_day / 24
        if recent > rt.settings.velocity_factor * max(average, 1):
            alerts.append(VelocityAlert(petition=petition, last_hour=recent, hourly_average=round(average, 1)))
    return alerts
