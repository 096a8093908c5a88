"""Telling a poll's audience that it opened (issue #25): one mail to each person it is put to, once, fanned out by
the jobs round in batches, as the petitions' announcements are (app/responses/delivery.py).

Who is told, fixed by the opening so that every round and every process agrees:
- a poll put to every member: each verified account the organization's rules let take part (its domains and its
  eligibility list), verified by the hour the poll opened;
- a poll put to departments or locations: those verified accounts among them that gave one of its groups;
- a poll put to a petition's signers: the signers who signed by name (public or organizers only) by that hour,
  whose signature stands. Never an anonymous signer: nothing ties their signature to an address, and a mail that
  reached them would say who signed anonymously. They see the poll on the petition's page and in their wallet.

When: the round after the opening hour begins, whoever the person is and whatever they did, so a mail's time
says when the poll opened and nothing about anyone. Nothing is sent later to those who have not answered: a
reminder would be sent to fewer people as answers came in, and who got one would say who had not answered.

Once each: a `deliveries` row per person and poll (the hour only), written in the transaction that queues the
mail; the next batch starts after the highest account recorded. Two rounds at once (two workers) queue a batch
only once: the second's rows collide with the first's on the primary key, its transaction (mail included) is
rolled back, and it carries on after the first's batch.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.ballots import audiences
from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.mail import service as mail
from app.mail import unsubscribe
from app.models.accounts import User
from app.models.ballots import Ballot, BallotAudience, BallotGroup, BallotState, MemberGroup
from app.models.mail_kinds import MailKind
from app.models.petitions import Delivery, Petition
from app.models.signatures import Signature, Visibility
from app.organization import eligibility
from app.petitions import repository as petition_rows

BATCH = 500
TEMPLATE = "ballot_opened"
# A round stops after this many batches of one poll that another process had taken (it carries on next round).
MAX_COLLISIONS = 3
# The audiences whose members this module can list (audience_after).
MAILED_AUDIENCES = (BallotAudience.members, BallotAudience.signers, BallotAudience.groups)
logger = logging.getLogger("undersigned.jobs")


def event_key(ballot_id: int) -> str:
    return f"ballot_opened:{ballot_id}"


def mail_openings(*, sessions: sessionmaker[Session], rt: Runtime, batch: int = BATCH) -> int:
    """Queue the opening mail of every open poll whose audience is not told yet; returns how many were queued."""
    now = rt.clock.now()
    with sessions() as db:
        candidates = db.scalars(
            select(Ballot.id)
            .outerjoin(Petition, Petition.id == Ballot.petition_id)
            .where(
                Ballot.opens_at <= now,
                Ballot.closes_at > now,
                Ballot.closed_early.is_(False),
                Ballot.audience.in_(MAILED_AUDIENCES),
                # A poll of a petition moderators hid waits until it is shown again (nobody may read it meanwhile):
                # the petitions' reading rule, as the wallet's open_ballots applies it.
                (Ballot.petition_id.is_(None)) | petition_rows.readable_to_everyone(),
            )
            .order_by(Ballot.id)
        ).all()
    queued = 0
    for ballot_id in candidates:
        queued += _mail_one(sessions=sessions, rt=rt, ballot_id=ballot_id, batch=batch)
    return queued


def _mail_one(*, sessions: sessionmaker[Session], rt: Runtime, ballot_id: int, batch: int) -> int:
    queued, collisions = 0, 0
    while collisions < MAX_COLLISIONS:
        try:
            with sessions.begin() as db:
                sent = _batch(db, rt, ballot_id, batch)
        except IntegrityError:
            # Another round queued this batch meanwhile: its rows stand, this one's were rolled back.
            collisions += 1
            continue
        if sent is None:
            return queued
        queued += sent
    logger.info("another round is mailing a poll's opening", extra={"ballot": ballot_id})
    return queued


def _batch(db: Session, rt: Runtime, ballot_id: int, batch: int) -> int | None:
    """Queue the next batch of a poll's opening mail: how many were queued, None once everyone was told."""
    ballot = db.get(Ballot, ballot_id)
    now = rt.clock.now()
    if ballot is None or ballot.state_at(now) is not BallotState.open:
        return None
    key = event_key(ballot.id)
    after = db.scalar(select(func.max(Delivery.user_id)).where(Delivery.event_key == key)) or 0
    users = audience_after(db, ballot, after=after, limit=batch)
    if not users:
        return None
    # Recorded for everyone in the batch, told or not (turned off, or outside the organization's rules now), so
    # the next batch starts after them. Tied to an account: the hour is all that is kept of when.
    db.add_all(Delivery(event_key=key, user_id=user.id, created_at=to_the_hour(now)) for user in users)
    db.flush()  # a second round's rows collide here, before any mail is queued
    stopped = unsubscribe.polls_turned_off(db=db, user_ids=[user.id for user in users])
    petition = db.get(Petition, ballot.petition_id) if ballot.petition_id is not None else None
    groups = [group.name for group in audiences.audience_groups(db=db, ballot=ballot)]
    base_url = rt.settings.base_url.rstrip("/")
    # The organization's rules (its domains, the eligibility list) as they stand now, for the whole batch at once.
    may_take_part = eligibility.eligible_among(db=db, rt=rt, users=users)
    sent = 0
    for user in users:
        if user.id in stopped or user.id not in may_take_part:
            continue
        mail.queue(
            db=db,
            templates=rt.templates,
            to_address=user.notification_address,
            template=TEMPLATE,
            # The round's hour, not its second: the row names its recipient.
            now=to_the_hour(now),
            context={
                "user": user,
                "ballot": ballot,
                "petition": petition,
                "signers": ballot.audience is BallotAudience.signers,
                "groups": ", ".join(groups),
                "ballot_url": f"{base_url}/polls/{ballot.id}",
                "closes_at": ballot.closes_at.strftime("%Y-%m-%d %H:%M"),
            },
            unsubscribe_url=unsubscribe.link(rt=rt, user_id=user.id, kind=MailKind.polls, petition_id=None),
            account_url=f"{base_url}/account",
        )
        sent += 1
    return sent


def audience_after(db: Session, ballot: Ballot, *, after: int, limit: int) -> list[User]:
    """The next `limit` accounts above `after` that the poll is put to and that are told of it, in account order
    (one index range scan with a limit, so each batch costs the same however large the audience)."""
    opened = ballot.opens_at
    if ballot.audience is BallotAudience.signers:
        if ballot.petition_id is None:
            return []
        ids = (
            select(Signature.account_id)
            .where(
                Signature.petition_id == ballot.petition_id,
                Signature.account_id > after,
                # Named signers only: an anonymous signature has no account, and must never get one here.
                Signature.visibility != Visibility.anonymous,
                Signature.invalidation_id.is_(None),
                Signature.signed_hour <= opened,
            )
            .order_by(Signature.account_id)
            .limit(limit)
        )
        return list(db.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))
    members = (
        select(User)
        .where(User.id > after, User.email_verified_at.is_not(None), User.email_verified_at <= opened)
        .order_by(User.id)
        .limit(limit)
    )
    if ballot.audience is BallotAudience.members:
        return list(db.scalars(members))
    if ballot.audience is BallotAudience.groups:
        # Those who gave one of its departments or locations on their account page (app/ballots/audiences.py), as
        # they stand when the round reaches them (a member's groups carry no time).
        chosen = select(BallotGroup.group_id).where(BallotGroup.ballot_id == ballot.id)
        in_groups = select(MemberGroup.account_id).where(MemberGroup.group_id.in_(chosen))
        return list(db.scalars(members.where(User.id.in_(in_groups))))
    raise ValueError(f"no opening mail for a poll put to {ballot.audience.value}")
