"""The petition lifecycle: the table of legal moves, the named sets of states, and `service.transition`."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.models.lifecycle import (
    EDITABLE_IN_PLACE_STATES,
    LABELS,
    LISTED_STATES,
    MODERATED_STATES,
    MODERATION_QUEUE_STATES,
    SIGNABLE_STATES,
    TRANSITIONS,
    VISIBLE_STATES,
    PetitionState,
    can_transition,
)
from app.models.petitions import Petition, PetitionEvent
from app.petitions import service
from tests import factories
from tests.conftest import count_rows

S = PetitionState

# The lifecycle as the product describes it, written out independently of the code's table.
LEGAL = {
    (S.draft, S.gathering_sponsors),
    (S.gathering_sponsors, S.in_moderation),
    (S.gathering_sponsors, S.open),  # when moderation is switched off
    (S.in_moderation, S.open),
    (S.in_moderation, S.rejected),
    (S.in_moderation, S.hidden),
    (S.open, S.closed),
    (S.open, S.hidden),
    (S.closed, S.archived),
    (S.closed, S.hidden),
    (S.hidden, S.open),
    (S.hidden, S.closed),
}
ALL_PAIRS = list(product(PetitionState, PetitionState))


def _pair_id(pair: tuple[PetitionState, PetitionState]) -> str:
    current, target = pair
    return f"{current.value}->{target.value}"


# -- the table ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [pair for pair in ALL_PAIRS if pair in LEGAL], ids=_pair_id)
def test_a_legal_transition_is_allowed(pair: tuple[PetitionState, PetitionState]) -> None:
    current, target = pair
    assert can_transition(current, target)
    assert target in TRANSITIONS[current]


@pytest.mark.parametrize("pair", [pair for pair in ALL_PAIRS if pair not in LEGAL], ids=_pair_id)
def test_an_illegal_transition_is_refused(pair: tuple[PetitionState, PetitionState]) -> None:
    current, target = pair
    assert not can_transition(current, target)
    assert target not in TRANSITIONS[current]


def test_the_table_names_every_state_and_nothing_else() -> None:
    assert set(TRANSITIONS) == set(PetitionState)
    assert {(current, target) for current, targets in TRANSITIONS.items() for target in targets} == LEGAL


def test_no_state_may_transition_to_itself() -> None:
    assert not any(can_transition(state, state) for state in PetitionState)


def test_nothing_returns_to_draft_and_rejected_and_archived_are_final() -> None:
    assert not any(can_transition(state, S.draft) for state in PetitionState)
    assert TRANSITIONS[S.rejected] == frozenset()
    assert TRANSITIONS[S.archived] == frozenset()


def test_every_reachable_state_has_an_event_kind_and_every_state_a_label() -> None:
    targets = {target for targets in TRANSITIONS.values() for target in targets}
    assert targets <= set(service.EVENT_FOR_STATE)
    assert set(LABELS) == set(PetitionState)


# -- the named sets -------------------------------------------------------------------------------------------


def test_visible_states_are_the_published_ones() -> None:
    assert {S.open, S.closed, S.rejected, S.archived} == VISIBLE_STATES


def test_only_an_open_petition_is_signable() -> None:
    assert {S.open} == SIGNABLE_STATES


def test_moderated_states_are_those_a_moderator_has_decided_on() -> None:
    assert {S.open, S.closed, S.rejected, S.hidden, S.archived} == MODERATED_STATES


def test_the_moderation_queue_holds_only_petitions_in_moderation() -> None:
    assert {S.in_moderation} == MODERATION_QUEUE_STATES


def test_drafts_are_edited_in_place_and_open_or_closed_ones_are_listed() -> None:
    assert {S.draft} == EDITABLE_IN_PLACE_STATES
    assert {S.open, S.closed} == LISTED_STATES


def test_the_named_sets_fit_together() -> None:
    assert SIGNABLE_STATES <= VISIBLE_STATES
    assert LISTED_STATES <= VISIBLE_STATES
    assert S.hidden not in VISIBLE_STATES and S.hidden in MODERATED_STATES
    assert not (MODERATION_QUEUE_STATES & MODERATED_STATES)
    assert not (EDITABLE_IN_PLACE_STATES & (VISIBLE_STATES | MODERATED_STATES | MODERATION_QUEUE_STATES))
    # Every state a moderator decided on is reachable from the queue by moves in the table.
    reachable, frontier = set(), set(MODERATION_QUEUE_STATES)
    while frontier:
        state = frontier.pop()
        for target in TRANSITIONS[state]:
            if target not in reachable:
                reachable.add(target)
                frontier.add(target)
    assert reachable >= MODERATED_STATES


# -- service.transition -----------------------------------------------------------------------------------------


def _events(db: Session, petition: Petition) -> list[PetitionEvent]:
    db.expire_all()
    return list(
        db.scalars(select(PetitionEvent).where(PetitionEvent.petition_id == petition.id).order_by(PetitionEvent.id))
    )


def _state_in_database(db: Session, petition: Petition) -> str:
    return db.execute(text("SELECT state FROM petitions WHERE id = :id"), {"id": petition.id}).scalar_one()


def test_an_illegal_transition_raises_conflict_and_writes_nothing(db: Session, rt) -> None:
    petition = factories.draft_petition(db, rt)
    events_before = count_rows(db, "petition_events")

    with pytest.raises(Conflict) as refused:
        service.transition(db=db, petition=petition, target=S.open, now=rt.clock.now())
    db.commit()

    assert refused.value.status_code == 409
    assert "Draft" in refused.value.message and "Open for signatures" in refused.value.message
    assert _state_in_database(db, petition) == "draft"
    assert count_rows(db, "petition_events") == events_before


def test_a_legal_transition_changes_the_state_and_records_an_event(db: Session, rt, clock) -> None:
    petition = factories.open_petition(db, rt)
    closer = factories.worker(db, name="Closing Organizer")
    clock.advance(timedelta(hours=3))

    service.transition(
        db=db,
        petition=petition,
        target=S.closed,
        now=clock.now(),
        actor=closer,
        values={"closed_at": clock.now()},
        detail="The organizers closed it.",
    )
    db.commit()

    assert _state_in_database(db, petition) == "closed"
    db.refresh(petition)
    assert petition.state is S.closed
    assert petition.closed_at == clock.now() and petition.updated_at == clock.now()
    last = _events(db, petition)[-1]
    assert (last.kind, last.actor_id, last.detail, last.public, last.at) == (
        "closed",
        closer.id,
        "The organizers closed it.",
        True,
        clock.now(),
    )


def test_a_private_transition_records_a_private_event(db: Session, rt) -> None:
    petition = factories.draft_petition(db, rt)

    service.transition(db=db, petition=petition, target=S.gathering_sponsors, now=rt.clock.now(), public=False)
    db.commit()

    last = _events(db, petition)[-1]
    assert (last.kind, last.public) == ("sent_to_sponsors", False)


def test_a_stale_object_cannot_transition_after_the_row_changed_underneath(db: Session, rt, connection) -> None:
    petition = factories.open_petition(db, rt)
    events_before = count_rows(db, "petition_events")
    # `petition` was loaded before this: another request closes the petition with its own session.
    with Session(bind=connection, join_transaction_mode="create_savepoint") as other:
        other.execute(text("UPDATE petitions SET state = 'closed' WHERE id = :id"), {"id": petition.id})
        other.commit()
    assert petition.state == "open"  # what this (stale) session still believes

    with pytest.raises(Conflict) as refused:
        service.transition(
            db=db, petition=petition, target=S.hidden, now=rt.clock.now(), values={"hidden_reason": "late"}
        )
    db.commit()

    assert refused.value.status_code == 409
    assert "changed at the same moment" in refused.value.message
    assert _state_in_database(db, petition) == "closed"
    assert count_rows(db, "petition_events") == events_before
    assert db.scalar(select(func.count()).select_from(Petition).where(Petition.hidden_reason.is_not(None))) == 0


def test_of_two_requests_making_the_same_move_only_the_first_succeeds(db: Session, rt, connection) -> None:
    petition = factories.open_petition(db, rt)  # this session's copy, loaded before the other request ran
    events_before = count_rows(db, "petition_events")
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as first:
        theirs = first.get(Petition, petition.id)
        assert theirs is not None
        service.transition(db=first, petition=theirs, target=S.closed, now=rt.clock.now())
        first.commit()

    with pytest.raises(Conflict):
        service.transition(db=db, petition=petition, target=S.closed, now=rt.clock.now())
    db.commit()

    assert _state_in_database(db, petition) == "closed"
    assert [event.kind for event in _events(db, petition)][events_before:] == ["closed"]
