"""The managed lists of departments and locations, and the signer's choice from them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.signatures import GroupKind, SignerGroup

NAME_MAX = 80
CHOOSE_FROM_LIST = {
    GroupKind.department: N_("Choose a department from the list, or none."),
    GroupKind.location: N_("Choose a location from the list, or none."),
}


def listing(*, db: Session, kind: GroupKind, active_only: bool = True) -> list[SignerGroup]:
    statement = select(SignerGroup).where(SignerGroup.kind == kind).order_by(SignerGroup.name)
    if active_only:
        statement = statement.where(SignerGroup.active.is_(True))
    return list(db.scalars(statement))


@dataclass(frozen=True)
class Offered:
    """A department or location the sign form offers."""

    id: int
    name: str


OFFERED_KEY = "signer-groups:offered"
# How long a process offers the lists it read: a change shows in the process that made it at once (its admin sees
# it), in the others within this. A group withdrawn meanwhile and chosen is refused by `choose`, in plain words.
OFFERED_SECONDS = 10.0


def offered(*, db: Session, rt: Runtime) -> dict[GroupKind, list[Offered]]:
    """The active departments and locations by name, as the sign form offers them, remembered by each process for
    OFFERED_SECONDS: the sign form is on the page of every member who has not signed a petition that asks, and
    reading them there was a fifth of such a page's CPU in issue #24's viral petition (py-spy)."""
    offered: dict[GroupKind, list[Offered]] = rt.cache.get(OFFERED_KEY, lambda: _offered(db), ttl=OFFERED_SECONDS)
    return offered


def _offered(db: Session) -> dict[GroupKind, list[Offered]]:
    rows = db.execute(
        select(SignerGroup.id, SignerGroup.kind, SignerGroup.name)
        .where(SignerGroup.active.is_(True))
        .order_by(SignerGroup.name)
    )
    lists: dict[GroupKind, list[Offered]] = {kind: [] for kind in GroupKind}
    for row in rows:
        lists[GroupKind(row.kind)].append(Offered(row.id, row.name))
    return lists


def choose(*, db: Session, kind: GroupKind, raw: str | None) -> int | None:
    """The id of the signer's chosen group, or None when they chose none (giving one is optional)."""
    if raw in (None, ""):
        return None
    valid_id = raw.isascii() and raw.isdigit() and len(raw) <= 9
    group = db.get(SignerGroup, int(raw)) if valid_id else None
    if group is None or group.kind != kind or not group.active:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={kind.value: CHOOSE_FROM_LIST[kind]},
        )
    return group.id


def add(*, db: Session, rt: Runtime, kind: GroupKind, name: str) -> SignerGroup:
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"name": Message(N_("Use 1 to %(length)s characters."), length=NAME_MAX)},
        )
    group = SignerGroup(kind=kind, name=name, active=True)
    try:
        with db.begin_nested():
            db.add(group)
    except IntegrityError:
        raise Conflict(Message(N_("“%(name)s” is already on the list."), name=name)) from None
    rt.cache.forget_changed(db, OFFERED_KEY)
    return group


def toggle(*, db: Session, rt: Runtime, kind: GroupKind, group_id: int) -> SignerGroup:
    group = db.get(SignerGroup, group_id)
    if group is None or group.kind != kind:
        raise NotFound(N_("There is no such entry."))
    group.active = not group.active
    rt.cache.forget_changed(db, OFFERED_KEY)
    return group
