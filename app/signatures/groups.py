"""The managed lists of departments and locations, and the signer's choice from them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.i18n import N_, Message
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


def add(*, db: Session, kind: GroupKind, name: str) -> SignerGroup:
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
    return group


def toggle(*, db: Session, kind: GroupKind, group_id: int) -> SignerGroup:
    group = db.get(SignerGroup, group_id)
    if group is None or group.kind != kind:
        raise NotFound(N_("There is no such entry."))
    group.active = not group.active
    return group
