"""Who may answer a ballot put to departments or locations (issue #25): the groups it is put to, the members who
gave them, and the member's own choice of them.

A member gives their department and location on their account page, from the managed lists signers choose from
(app/signatures/groups.py keeps those lists; ballots and signatures know nothing of each other, so this module
reads the table itself). The server must know it to issue a groups' ballot credential to the right accounts: the
operator learns each member's stated groups, as it learns who was issued which credential; an answer names no
account. A member states their own groups, as signers state theirs on a signature: one who states another's
department answers its polls (still once per account), a limit docs/architecture.md states.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.core.errors import InvalidInput
from app.core.i18n import N_, Message
from app.models.accounts import User
from app.models.ballots import Ballot, BallotAudience, BallotGroup, MemberGroup
from app.models.signatures import GroupKind, SignerGroup

MAX_GROUPS = 50
FIELDS_ERROR = N_("Please correct the highlighted fields.")


def audience_groups(*, db: Session, ballot: Ballot) -> list[SignerGroup]:
    """The departments and locations a ballot is put to (none unless its audience is `groups`), by kind and name."""
    return list(
        db.scalars(
            select(SignerGroup)
            .join(BallotGroup, BallotGroup.group_id == SignerGroup.id)
            .where(BallotGroup.ballot_id == ballot.id)
            .order_by(SignerGroup.kind, SignerGroup.name)
        )
    )


def log_entries(groups: Sequence[SignerGroup]) -> list[dict[str, object]] | None:
    """The groups as entry 0 of the log commits them (None: the ballot has none, and its entry names none)."""
    return [{"id": group.id, "kind": group.kind.value, "name": group.name} for group in groups] or None


def audience_size(*, db: Session, group_ids: Sequence[int]) -> int:
    """Confirmed members who gave one of these departments or locations: who may answer a ballot put to them."""
    return (
        db.scalar(
            select(func.count(func.distinct(MemberGroup.account_id)))
            .join(User, User.id == MemberGroup.account_id)
            .where(MemberGroup.group_id.in_(list(group_ids)), User.email_verified_at.is_not(None))
        )
        or 0
    )


def in_audience(*, db: Session, ballot: Ballot, user: User | None) -> bool:
    """Whether this reader is among those who may answer: any confirmed member, for a members' ballot; one who gave
    a chosen department or location, for a groups' ballot. (A signers' ballot: the wallet decides, from the signer
    credential it holds; the server cannot tell an anonymous signer, so it answers True.)"""
    if user is None or not user.is_verified:
        return False
    if ballot.audience is not BallotAudience.groups:
        return True
    mine = select(MemberGroup.group_id).where(MemberGroup.account_id == user.id)
    return (
        db.scalar(
            select(func.count())
            .select_from(BallotGroup)
            .where(BallotGroup.ballot_id == ballot.id, BallotGroup.group_id.in_(mine))
        )
        or 0
    ) > 0


def member_groups(*, db: Session, user: User) -> dict[GroupKind, SignerGroup]:
    """The department and location this member gave for polls (each absent when they gave none)."""
    rows = db.execute(
        select(MemberGroup.kind, SignerGroup)
        .join(SignerGroup, SignerGroup.id == MemberGroup.group_id)
        .where(MemberGroup.account_id == user.id)
    ).all()
    return {kind: group for kind, group in rows}


def set_member_groups(*, db: Session, user: User, department: str | None, location: str | None) -> None:
    """A member gives (or takes back) their department and location for polls put to them, both checked in one
    round: each empty (none) or an active entry of its list. Changing them later leaves credentials already issued
    as they are (one per account per ballot), so it earns no second answer."""
    errors: dict[str, str] = {}
    chosen: dict[GroupKind, int | None] = {}
    for kind, raw in ((GroupKind.department, department), (GroupKind.location, location)):
        raw = (raw or "").strip()
        if not raw:
            chosen[kind] = None
            continue
        group = db.get(SignerGroup, int(raw)) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None
        if group is None or group.kind != kind or not group.active:
            errors[kind.value] = (
                N_("Choose a department from the list, or none.")
                if kind is GroupKind.department
                else N_("Choose a location from the list, or none.")
            )
            continue
        chosen[kind] = group.id
    if errors:
        raise InvalidInput(FIELDS_ERROR, fields=errors)
    db.execute(delete(MemberGroup).where(MemberGroup.account_id == user.id))
    db.add_all(
        MemberGroup(account_id=user.id, kind=kind, group_id=group_id)
        for kind, group_id in chosen.items()
        if group_id is not None
    )
    db.flush()


def check_groups(
    db: Session, audience: BallotAudience, group_ids: Sequence[int], k: int, errors: dict[str, str]
) -> list[SignerGroup]:
    """The departments and locations a new ballot is put to: only for that audience, at least one, each on the
    organization's lists, and each given by at least k members: fewer could never show a result, and a group below
    k added to a poll's audience would tell its answers by differencing with another poll.

    The refusal compares with k alone, and says "fewer than", never how many. A count in it, re-read after a
    colleague states a group, says someone joined; a comparison with the poll's own minimum lets an organizer
    search that minimum for the exact size of any set of groups, and the size of a small department by
    differencing two sets (departments do not overlap). A minimum above the audience is the organizer's to choose,
    as for a members' poll: the poll then shows no result."""
    chosen = sorted(set(group_ids))
    if audience is not BallotAudience.groups:
        if chosen:
            errors["groups"] = N_(
                "Departments and locations are for a poll put to them: choose that under who may answer, or "
                "choose none."
            )
        return []
    if not chosen:
        errors["groups"] = N_("Choose at least one department or location.")
        return []
    if len(chosen) > MAX_GROUPS:
        errors["groups"] = Message(N_("Choose at most %(max)s departments and locations."), max=MAX_GROUPS)
        return []
    found = list(db.scalars(select(SignerGroup).where(SignerGroup.id.in_(chosen), SignerGroup.active.is_(True))))
    if len(found) != len(chosen):
        errors["groups"] = N_("Choose departments and locations from the organization's lists.")
        return []
    # Each group on its own, not only together: the same question put to Engineering and Lyon, and to Lyon alone,
    # tells by subtracting the two results how Engineering answered, however few they are.
    if any(size < k for size in group_sizes(db=db, group_ids=chosen).values()):
        errors["groups"] = Message(
            N_(
                "Fewer than %(min)s members have given at least one of these departments or locations on their "
                "account. Each one chosen must have %(min)s, or two polls a group apart would tell that group's "
                "answers. Choose others, or wait until more members have given theirs."
            ),
            min=k,
        )
    return sorted(found, key=lambda group: (group.kind.value, group.name))


def group_sizes(*, db: Session, group_ids: Sequence[int]) -> dict[int, int]:
    """Confirmed members who gave each of these departments or locations (0 for one nobody gave)."""
    counted: dict[int, int] = {
        group_id: size
        for group_id, size in db.execute(
            select(MemberGroup.group_id, func.count(func.distinct(MemberGroup.account_id)))
            .join(User, User.id == MemberGroup.account_id)
            .where(MemberGroup.group_id.in_(list(group_ids)), User.email_verified_at.is_not(None))
            .group_by(MemberGroup.group_id)
        )
    }
    return {group_id: counted.get(group_id, 0) for group_id in group_ids}
