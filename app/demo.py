"""The demo organization `make run` starts with: accounts for each role and petitions in several states."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.comments import anonymous
from app.comments import service as comments
from app.comments.queue import Pending
from app.comments.schemas import CommentCreate
from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.core.security import hash_password
from app.log import service as signature_log
from app.models.accounts import Role, RoleGrant, User, address_lookup
from app.models.petitions import Petition
from app.models.signatures import GroupKind, SignerGroup
from app.organization import service as organization
from app.petitions import service as petitions
from app.petitions.schemas import PetitionDraft
from app.signatures import service as signatures

DEMO_PASSWORD = "demo-password-2026"
DEMO_ACCOUNTS = [
    ("worker", "Ana Silva", "ana"),
    ("worker", "Ben Okafor", "ben"),
    ("worker", "Chen Wei", "chen"),
    ("worker", "Dara Novak", "dara"),
    ("responder", "Riley Park (Leadership)", "riley"),
    ("moderator", "Morgan Lee", "morgan"),
    ("admin", "Avery Admin", "admin"),
]

DEMO_GROUPS = {
    GroupKind.department: ["Engineering", "Operations", "People", "Sales", "Support"],
    GroupKind.location: ["Headquarters", "Remote", "Warehouse"],
}

# (creator, stage, title, ask, background, category, signers as (account, visibility))
DEMO_PETITIONS = [
    (
        "ana",
        "open",
        "Stop recording our screens to train AI",
        "End the mandatory keystroke, click and screen recording programme, and delete what it collected.",
        (
            "The programme records private conversations and performance data.\n\nWe were told the data is tightly "
            "controlled; a security promise is not the same as not collecting it."
        ),
        "privacy",
        [("ben", "public"), ("chen", "organizers"), ("dara", "public")],
    ),
    (
        "ben",
        "open",
        "Publish the salary bands for every role",
        "Publish the salary band of every role on the intranet.",
        "Pay transparency lets everyone check they are paid fairly for the same work.",
        "pay",
        [("ana", "organizers")],
    ),
    (
        "chen",
        "in_moderation",
        "Quiet rooms on every floor",
        "Set aside one bookable quiet room on every office floor.",
        "Open-plan floors leave nowhere to take a difficult call or simply concentrate.",
        "workplace",
        [],
    ),
    (
        "dara",
        "draft",
        "A four-day week pilot for the support team",
        "Run a six-month four-day week pilot in the support team, with the same pay.",
        "Other companies report better retention and no loss of output.",
        "wellbeing",
        [],
    ),
]


def seed(*, sessions: sessionmaker[Session], rt: Runtime) -> list[tuple[str, str]]:
    domain = rt.settings.default_email_domain
    now = rt.clock.now()
    created: list[tuple[str, str]] = []
    password_hash = hash_password(DEMO_PASSWORD)
    with sessions.begin() as db:
        for role, name, local in DEMO_ACCOUNTS:
            email = f"{local}@{domain}"
            created.append((role, email))
            if db.scalar(select(User.id).where(address_lookup(email))) is not None:
                continue
            user = User(
                email=email,
                display_name=name,
                password_hash=password_hash,
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
            if role != Role.worker:
                user.roles.append(RoleGrant(role=role, granted_at=now))
            db.add(user)
    with sessions.begin() as db:
        if not db.scalar(select(func.count()).select_from(SignerGroup)):
            for kind, names in DEMO_GROUPS.items():
                db.add_all(SignerGroup(kind=kind, name=name, active=True) for name in names)
        if not db.scalar(select(func.count()).select_from(Petition)):
            _seed_petitions(db, rt, domain)
    # The demo's signatures join the petitions' public logs now, rather than with the first batch.
    signature_log.flush(sessions=sessions, rt=rt)
    return created


def _seed_petitions(db: Session, rt: Runtime, domain: str) -> None:
    people = {user.email.split("@")[0]: user for user in db.scalars(select(User))}
    for user in people.values():
        db.refresh(user, attribute_names=["roles"])
    moderator = people["morgan"]
    for creator_key, stage, title, ask, background, category, signers in DEMO_PETITIONS:
        creator = people[creator_key]
        petition = petitions.create_draft(
            db=db,
            rt=rt,
            creator=creator,
            form=PetitionDraft(
                title=title, ask=ask, background=background, category=category, allow_anonymous=stage == "open"
            ),
        )
        if stage == "draft":
            continue
        petitions.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=creator)
        token = petitions.sponsor_token(rt=rt, petition=petition)
        colleagues = [people[key] for key in ("ana", "ben", "chen", "dara") if key != creator_key]
        for sponsor in colleagues[: organization.current(db=db, rt=rt).sponsors_required]:
            if petition.state == "gathering_sponsors":
                petitions.sponsor(db=db, rt=rt, petition=petition, token=token, user=sponsor)
        if stage == "open" and petition.state == "in_moderation":
            petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
        for signer_key, visibility in signers:
            signatures.sign(
                db=db,
                rt=rt,
                petition_id=petition.id,
                user=people[signer_key],
                visibility=visibility,
                notify_updates=True,
            )
        if title == DEMO_PETITIONS[0][2]:
            _seed_discussion(db, rt, petition, people)


def _seed_discussion(db: Session, rt: Runtime, petition: Petition, people: dict[str, User]) -> None:
    """A short discussion under the first petition: a comment, a reply, an anonymous comment, an endorsement."""
    point = comments.create(
        db=db,
        rt=rt,
        petition=petition,
        author=people["ben"],
        form=CommentCreate(
            body="Screen recordings also capture **customer data** on our screens. Has anyone asked the privacy team?"
        ),
    )
    comments.create(
        db=db,
        rt=rt,
        petition=petition,
        author=people["ana"],
        form=CommentCreate(body="Not yet: I will put it in the first update.", parent_id=point.id),
    )
    # Written as a batch writes it, under a discussion credential made up here and thrown away: nobody can edit it
    # later, and no account is tied to it.
    message = secrets.token_bytes(64)
    anonymous.write_group(
        db,
        petition,
        [
            Pending(
                ref=secrets.token_hex(16),
                petition_id=petition.id,
                parent_id=None,
                body="My team lead reads the recordings in our one-to-ones.",
                author_tag=anonymous.author_tag(message),
                pseudonym=anonymous.pseudonym(message),
            )
        ],
        to_the_hour(rt.clock.now()),
    )
    comments.endorse(db=db, petition=petition, comment=point, user=people["dara"])
