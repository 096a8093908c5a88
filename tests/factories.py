"""Factories named after domain states: build petitions through the same services the app uses."""

from __future__ import annotations

import secrets
from itertools import count

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.comments import anonymous
from app.comments import service as comments
from app.comments.queue import Pending
from app.comments.schemas import CommentCreate
from app.core import blindrsa
from app.core.clock import to_the_hour
from app.core.runtime import Runtime
from app.models.accounts import Role, User
from app.models.anonymous import DiscussionKey
from app.models.comments import Comment
from app.models.lifecycle import PetitionState
from app.models.petitions import Category, Petition
from app.petitions import issuing_keys, service
from app.petitions.schemas import PetitionCorrection, PetitionDraft
from tests.conftest import make_user

_serial = count(1)


def worker(db: Session, name: str | None = None, roles: tuple[Role, ...] = ()) -> User:
    number = next(_serial)
    return make_user(
        db, email=f"worker{number}@example.org", name=name or f"Worker {number}", password=None, roles=roles
    )


def moderator(db: Session) -> User:
    return worker(db, name="Morgan Moderator", roles=(Role.moderator,))


def draft(**changes: object) -> PetitionDraft:
    values: dict[str, object] = {
        "title": "Stop recording our screens to train AI",
        "ask": "End the mandatory keystroke and screen recording programme.",
        "background": "Recording every keystroke exposes private conversations and performance data.",
        "decision_maker": "Chief People Officer",
        "category": "privacy",
    }
    values.update(changes)
    return PetitionDraft.model_validate(values)


def draft_petition(db: Session, rt: Runtime, creator: User | None = None, **changes: object) -> Petition:
    petition = service.create_draft(db=db, rt=rt, creator=creator or worker(db), form=draft(**changes))
    db.commit()
    return petition


def petition_gathering_sponsors(db: Session, rt: Runtime, creator: User | None = None, **changes: object) -> Petition:
    creator = creator or worker(db)
    petition = draft_petition(db, rt, creator, **changes)
    service.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=creator)
    db.commit()
    return petition


def petition_in_moderation(db: Session, rt: Runtime, creator: User | None = None, **changes: object) -> Petition:
    petition = petition_gathering_sponsors(db, rt, creator, **changes)
    token = service.sponsor_token(rt=rt, petition=petition)
    for _ in range(rt.settings.sponsors_required):
        service.sponsor(db=db, rt=rt, petition=petition, token=token, user=worker(db))
    db.commit()
    assert petition.state is PetitionState.in_moderation
    return petition


def open_petition(db: Session, rt: Runtime, creator: User | None = None, **changes: object) -> Petition:
    petition = petition_in_moderation(db, rt, creator, **changes)
    service.open_petition(db=db, rt=rt, petition=petition, actor=moderator(db))
    db.commit()
    return petition


def closed_petition(db: Session, rt: Runtime, creator: User | None = None, **changes: object) -> Petition:
    petition = open_petition(db, rt, creator, **changes)
    service.close(db=db, rt=rt, petition=petition, actor=None, reason="The organizers closed it.")
    db.commit()
    return petition


def category(db: Session, slug: str) -> Category:
    return db.scalars(select(Category).where(Category.slug == slug)).one()


def comment(
    db: Session,
    rt: Runtime,
    petition: Petition,
    author: User | None = None,
    body: str = "I agree: the recordings must stop.",
    parent: Comment | None = None,
) -> Comment:
    """A named comment (or a reply to `parent`) posted through the service, as the pages and the API post them."""
    posted = comments.create(
        db=db,
        rt=rt,
        petition=petition,
        author=author or worker(db),
        form=CommentCreate(body=body, parent_id=parent.id if parent else None),
    )
    db.commit()
    return posted


def discussion_credential(db: Session, rt: Runtime, petition: Petition) -> tuple[bytes, bytes]:
    """A discussion credential for an anonymous-enabled open petition, as a wallet finalizes it."""
    key = db.get_one(DiscussionKey, petition.id)
    public = blindrsa.PublicKey.from_spki(key.spki)
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(public, message)
    reply = issuing_keys.signer_for(key=key, rt=rt).blind_sign(blinded.blinded_msg)
    return message, blindrsa.finalize(public, message, reply, blinded.inv)


def anonymous_comment(
    db: Session,
    rt: Runtime,
    petition: Petition,
    body: str = "I agree, but I cannot say so by name.",
    parent: Comment | None = None,
    credential: tuple[bytes, bytes] | None = None,
) -> Comment:
    """An anonymous comment as the batch publishes it, written by `credential` (a fresh one by default)."""
    message, _signature = credential or discussion_credential(db, rt, petition)
    item = Pending(
        ref=secrets.token_hex(16),
        petition_id=petition.id,
        parent_id=parent.id if parent else None,
        body=body,
        author_tag=anonymous.author_tag(message),
        pseudonym=anonymous.pseudonym(message),
    )
    (posted,) = anonymous.write_group(db, petition, [item], to_the_hour(rt.clock.now()))
    db.commit()
    return posted


def correction(**changes: object) -> PetitionCorrection:
    values: dict[str, object] = {
        "title": "Stop recording our screens to train AI, now",
        "ask": "End the mandatory keystroke and screen recording programme.",
        "background": "Recording every keystroke exposes private conversations and performance data.",
        "decision_maker": "Chief People Officer",
        "note": "A clearer title.",
    }
    values.update(changes)
    return PetitionCorrection.model_validate(values)
