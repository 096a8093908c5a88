"""Enum columns hold their enum's members, on both databases and after every way a state changes (issue #23).

Code compares states by identity on the typed column itself (`petition.state is PetitionState.open`), with no
conversion in between: a string left in the attribute would make such a test quietly false, and a closed petition
would take signatures."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.runtime import Runtime
from app.models.comments import Comment, CommentState
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition
from app.petitions import service
from tests import factories


def test_a_petition_read_back_holds_its_state_as_a_member(db: Session, rt: Runtime) -> None:
    petition_id = factories.open_petition(db, rt).id
    db.expunge_all()
    state = db.scalar(select(Petition.state).where(Petition.id == petition_id))
    assert type(state) is PetitionState and state is PetitionState.open
    petition = db.get_one(Petition, petition_id)
    assert type(petition.state) is PetitionState and petition.state is PetitionState.open
    assert petition.takes_signatures


def test_a_transition_leaves_a_member_in_the_loaded_petition(db: Session, rt: Runtime) -> None:
    """The compare-and-set UPDATE writes the state behind the session's back and sets the loaded attribute
    itself: it wrote the enum's value there, a string, which `is PetitionState.closed` called false."""
    petition = factories.open_petition(db, rt)
    service.transition(db=db, petition=petition, target=PetitionState.closed, now=rt.clock.now())
    assert type(petition.state) is PetitionState and petition.state is PetitionState.closed
    assert petition.is_closed and not petition.takes_signatures
    db.commit()
    db.expire_all()
    assert petition.state is PetitionState.closed


def test_a_comment_read_back_holds_its_state_as_a_member(db: Session, rt: Runtime) -> None:
    comment_id = factories.comment(db, rt, factories.open_petition(db, rt)).id
    db.expunge_all()
    comment = db.get_one(Comment, comment_id)
    assert type(comment.state) is CommentState and comment.state is CommentState.visible
