"""The next goal an open petition works towards: one rule for the petition page, the cards and the poster."""

from __future__ import annotations

import pytest

from app.models.goals import GoalKind, next_goal
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition


def petition(count: int, state: PetitionState = PetitionState.open) -> Petition:
    return Petition(state=state.value, signature_count=count, response_threshold=100, escalation_threshold=500)


def test_the_response_threshold_comes_first_then_the_escalation() -> None:
    first = next_goal(petition(40))
    assert first is not None and (first.kind, first.signatures, first.remaining, first.responds) == (
        GoalKind.response,
        100,
        60,
        True,
    )
    second = next_goal(petition(100))
    assert second is not None and (second.kind, second.signatures, second.remaining, second.responds) == (
        GoalKind.escalation,
        500,
        400,
        False,
    )
    assert next_goal(petition(500)) is None


@pytest.mark.parametrize("state", [state for state in PetitionState if state is not PetitionState.open])
def test_a_petition_that_takes_no_signatures_has_no_goal(state: PetitionState) -> None:
    assert next_goal(petition(40, state)) is None
    assert petition(40, state).next_goal is None


def test_a_petition_without_thresholds_has_no_goal() -> None:
    assert (
        next_goal(Petition(state="open", signature_count=3, response_threshold=None, escalation_threshold=None)) is None
    )
