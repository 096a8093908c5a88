"""The account page's mail settings: the petitions a person follows, organizes or signed with their name, and
which kinds of mail about each they get.

Anonymous signatures are not here and cannot be: the server does not know whose they are (a signature with no
account is all it holds). The page says so and points to the wallet, which is the only place that knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.mail import unsubscribe
from app.models.accounts import Role, User
from app.models.mail_kinds import MailKind
from app.models.petitions import Follow, Petition, PetitionOrganizer
from app.models.signatures import Signature, Visibility
from app.petitions import repository
from app.petitions import service as petitions

NAMED = (Visibility.public.value, Visibility.organizers.value)


@dataclass
class PetitionMail:
    petition: Petition
    organizer: bool = False
    following: bool = False
    # How the person signed with their name (public, or shown to organizers only); None if they did not.
    signed: str | None = None
    notify_updates: bool = False
    off: set[MailKind] = field(default_factory=set)
    responder: bool = False

    @property
    def kinds(self) -> list[tuple[MailKind, bool]]:
        """The kinds of mail about this petition the person can get, each with whether it is on."""
        news_on = (self.following or self.notify_updates or self.organizer) and MailKind.news not in self.off
        kinds = [(MailKind.news, news_on)]
        if self.organizer:
            kinds += [(kind, kind not in self.off) for kind in (MailKind.organizing, MailKind.digest)]
        if self.responder or MailKind.responding in self.off:
            kinds.append((MailKind.responding, MailKind.responding not in self.off))
        return kinds


def account_petitions(*, db: Session, user: User) -> list[PetitionMail]:
    """Every petition the person follows, organizes, signed by name or turned some mail off for, newest first:
    four queries whatever their number. Only petitions the person may read: one hidden by moderators since (or
    a draft that a mail's link once named) is neither shown by its title nor followed from here."""
    rows: dict[int, PetitionMail] = {}
    readable = repository.readable_by(user)

    def row(petition: Petition) -> PetitionMail:
        return rows.setdefault(petition.id, PetitionMail(petition=petition, responder=user.has_role(Role.responder)))

    for petition in db.scalars(
        select(Petition)
        .join(PetitionOrganizer, PetitionOrganizer.petition_id == Petition.id)
        .where(PetitionOrganizer.user_id == user.id)
    ):
        row(petition).organizer = True
    for petition in db.scalars(
        select(Petition).join(Follow, Follow.petition_id == Petition.id).where(Follow.user_id == user.id, readable)
    ):
        row(petition).following = True
    for petition, visibility, notify_updates in db.execute(
        select(Petition, Signature.visibility, Signature.notify_updates)
        .join(Signature, Signature.petition_id == Petition.id)
        .where(
            Signature.account_id == user.id,
            Signature.visibility.in_(NAMED),
            Signature.invalidation_id.is_(None),
            readable,
        )
    ):
        entry = row(petition)
        entry.signed, entry.notify_updates = visibility, notify_updates
    off = unsubscribe.opt_outs(db=db, user=user)
    missing = {petition_id for petition_id, _ in off} - rows.keys()
    if missing:
        for petition in db.scalars(select(Petition).where(Petition.id.in_(missing), readable)):
            row(petition)
    for petition_id, kind in off:
        if petition_id in rows and kind in MailKind.__members__:
            rows[petition_id].off.add(MailKind(kind))
    return sorted(rows.values(), key=lambda entry: (-entry.petition.created_at.timestamp(), entry.petition.id))


def petition_mail(*, db: Session, user: User, petition_id: int) -> PetitionMail:
    for entry in account_petitions(db=db, user=user):
        if entry.petition.id == petition_id:
            return entry
    raise NotFound(N_("You do not follow, organize or sign that petition by name, so no mail about it comes to you."))


def save(*, db: Session, rt: Runtime, user: User, petition_id: int, wanted: set[str]) -> None:
    """Turn each kind of mail about the petition on or off as the account page's boxes say."""
    entry = petition_mail(db=db, user=user, petition_id=petition_id)
    for kind, on in entry.kinds:
        if kind.value in wanted and not on:
            if kind is MailKind.news and not entry.signed and not entry.organizer and not entry.following:
                # Asking for news of a petition one has no other tie to is following it, with the petition page's
                # rules (only a published petition can be followed).
                petitions.follow(db=db, rt=rt, petition=entry.petition, user=user)
                continue
            unsubscribe.turn_on(db=db, user=user, kind=kind, petition_id=petition_id)
            if kind is MailKind.news and entry.signed:
                db.execute(
                    update(Signature)
                    .where(
                        Signature.account_id == user.id,
                        Signature.petition_id == petition_id,
                        Signature.visibility.in_(NAMED),
                    )
                    .values(notify_updates=True)
                    .execution_options(synchronize_session=False)
                )
        elif kind.value not in wanted and on:
            if kind is MailKind.news:
                unsubscribe.stop_news(db=db, rt=rt, user=user, petition_id=petition_id)
            else:
                unsubscribe.turn_off(db=db, rt=rt, user=user, kind=kind, petition_id=petition_id)
    db.flush()
