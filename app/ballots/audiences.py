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
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.core.errors import AppError, InvalidInput
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.ballots import Ballot, BallotAudience, BallotGroup, BallotIssuance, BallotKind, MemberGroup
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


# -- counting an answer under a group (the breakdown at close) -------------------------------------------------


class BadGroup(AppError):
    """A group an answer cannot be counted under (400): nothing is queued."""

    status_code = 400
    code = "bad_group"
    title = N_("That answer cannot be counted under that group")


def takes_several_choices(ballot: Ballot) -> bool:
    """A multiple-choice poll that lets an answer choose more than one option: it has no breakdown. Its leaves
    publish how many answers chose each set of options, and a group's figure for each option is a sum over those
    sets, which ties its columns together: were every answer to include "Lunch", a group's "Late" would be its
    "Lunch" less its "Early", published or not. Suppressing each column against its total cannot see that
    (tests/test_ballot_breakdowns.py solves such cells from the leaves). One choice, or a ranking broken down by its
    first choice, puts each answer in one column only, and the leaves then say no more than the totals."""
    return ballot.kind is BallotKind.multiple and ballot.max_choices > 1


def breaks_down(ballot: Ballot, group_count: int) -> bool:
    """`has_breakdown`'s rule, on a count of the poll's groups already read."""
    return ballot.audience is BallotAudience.groups and group_count >= 2 and not takes_several_choices(ballot)


def has_breakdown(*, db: Session, ballot: Ballot) -> bool:
    """Whether the result is broken down by group at close: a poll put to two departments or locations or more
    that takes one choice per answer (or a ranking). (Put to one, every answerer is of it, so counting under it
    would tell nothing; put to every member or to a petition's signers, no group is asked for; taking several
    choices, `takes_several_choices`: see docs/architecture.md.)"""
    if ballot.audience is not BallotAudience.groups or takes_several_choices(ballot):
        return False
    count = db.scalar(select(func.count()).select_from(BallotGroup).where(BallotGroup.ballot_id == ballot.id)) or 0
    return breaks_down(ballot, count)


def holders(*, db: Session, ballot: Ballot, group_ids: Sequence[int]) -> dict[int, int]:
    """For each group, the confirmed members who gave it and collected this ballot's credential: among whom an
    answer counted under it hides (the operator knows both sets; nobody knows which of them answered)."""
    counted: dict[int, int] = {
        group_id: size
        for group_id, size in db.execute(
            select(MemberGroup.group_id, func.count(func.distinct(MemberGroup.account_id)))
            .join(User, User.id == MemberGroup.account_id)
            .join(
                BallotIssuance,
                (BallotIssuance.account_id == MemberGroup.account_id) & (BallotIssuance.ballot_id == ballot.id),
            )
            .where(MemberGroup.group_id.in_(list(group_ids)), User.email_verified_at.is_not(None))
            .group_by(MemberGroup.group_id)
        )
    }
    return {group_id: counted.get(group_id, 0) for group_id in group_ids}


def check_answer_group(*, db: Session, rt: Runtime, ballot: Ballot, group_id: int) -> None:
    """An answer may be counted under a group only on a poll with a breakdown, only a group the poll is put to, and
    only while at least k of its members hold the credential: under fewer, the group alone would narrow the answer
    to fewer people than the site promises. The refusal says "fewer than k", never the count."""
    if ballot.audience is not BallotAudience.groups:
        raise BadGroup(
            N_(
                "This poll is not put to departments or locations, so its result is not broken down by them: send "
                "your answer without a group."
            ),
            fields={"group": N_("Leave it out.")},
        )
    if takes_several_choices(ballot):
        raise BadGroup(
            N_(
                "This poll takes more than one choice, so its result is not broken down by department or location: "
                "the public log shows each answer's set of choices, and with it a breakdown's hidden figures could be "
                "worked out. Send your answer without a group."
            ),
            fields={"group": N_("Leave it out.")},
        )
    if not has_breakdown(db=db, ballot=ballot):
        raise BadGroup(
            N_(
                "This poll is put to one department or location only, so its result is not broken down: send your "
                "answer without a group."
            ),
            fields={"group": N_("Leave it out.")},
        )
    if group_id not in {group.id for group in audience_groups(db=db, ballot=ballot)}:
        raise BadGroup(
            N_("That department or location is not one this poll is put to: choose one of its groups, or none."),
            fields={"group": N_("Not one of this poll's groups.")},
        )
    k = rt.settings.min_group_size
    if holders(db=db, ballot=ballot, group_ids=[group_id])[group_id] < k:
        raise BadGroup(
            Message(
                N_(
                    "Fewer than %(min)s of its members hold this poll's credential, so an answer counted under it "
                    "would hide among too few people. Send your answer without a group."
                ),
                min=k,
            ),
            fields={"group": Message(N_("Fewer than %(min)s hold the credential."), min=k)},
        )


@dataclass(frozen=True)
class GroupChoice:
    """One of a member's own groups as the answer form offers it: among how many an answer under it hides, and
    whether it may be chosen (at least k of them)."""

    group: SignerGroup
    hidden_among: int
    allowed: bool


def answer_choices(*, db: Session, rt: Runtime, ballot: Ballot, user: User | None) -> list[GroupChoice]:
    """The groups this member may count their answer under: those they gave on their account that the poll is put
    to (none on a poll without a breakdown, or for a reader who is not signed in)."""
    if user is None or not has_breakdown(db=db, ballot=ballot):
        return []
    theirs = {group.id for group in member_groups(db=db, user=user).values()}
    offered = [group for group in audience_groups(db=db, ballot=ballot) if group.id in theirs]
    sizes = holders(db=db, ballot=ballot, group_ids=[group.id for group in offered])
    k = rt.settings.min_group_size
    return [GroupChoice(group, sizes[group.id], sizes[group.id] >= k) for group in offered]
