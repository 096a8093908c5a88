"""The next signature count an open petition is working towards, as the page, the cards and the poster show it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from app.models.lifecycle import SIGNABLE_STATES, PetitionState


class GoalKind(StrEnum):
    response = "response"  # leadership must respond
    escalation = "escalation"  # the petition calls for a public answer


@dataclass(frozen=True)
class Goal:
    kind: GoalKind
    signatures: int
    remaining: int

    @property
    def responds(self) -> bool:
        """Reaching it obliges leadership to respond (rather than escalating)."""
        return self.kind is GoalKind.response


class Counted(Protocol):
    state: PetitionState
    signature_count: int
    response_threshold: int | None
    escalation_threshold: int | None


def next_goal(petition: Counted) -> Goal | None:
    """The first threshold the count has not reached, while the petition takes signatures; None otherwise."""
    if PetitionState(petition.state) not in SIGNABLE_STATES:
        return None
    count = petition.signature_count
    for kind, threshold in (
        (GoalKind.response, petition.response_threshold),
        (GoalKind.escalation, petition.escalation_threshold),
    ):
        if threshold and count < threshold:
            return Goal(kind=kind, signatures=threshold, remaining=threshold - count)
    return None
