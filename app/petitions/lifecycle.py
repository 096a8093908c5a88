"""A petition's lifecycle: the states, the named sets of them, and the one table of legal transitions."""

from __future__ import annotations

from enum import StrEnum

from app.core.i18n import N_


class PetitionState(StrEnum):
    draft = "draft"
    gathering_sponsors = "gathering_sponsors"
    in_moderation = "in_moderation"
    open = "open"
    closed = "closed"
    rejected = "rejected"
    hidden = "hidden"
    archived = "archived"


S = PetitionState

# Readable by anyone who can read petitions (rejected ones show their public reason).
VISIBLE_STATES = frozenset({S.open, S.closed, S.rejected, S.archived})
# Accepting signatures.
SIGNABLE_STATES = frozenset({S.open})
# A moderator has decided on it (it went through the queue).
MODERATED_STATES = frozenset({S.open, S.closed, S.rejected, S.hidden, S.archived})
# Waiting in the moderators' queue.
MODERATION_QUEUE_STATES = frozenset({S.in_moderation})
# Its text can still be edited in place (nobody has confirmed or signed it yet).
EDITABLE_IN_PLACE_STATES = frozenset({S.draft})
# Listed in discovery pages and search.
LISTED_STATES = frozenset({S.open, S.closed})

TRANSITIONS: dict[PetitionState, frozenset[PetitionState]] = {
    S.draft: frozenset({S.gathering_sponsors}),
    S.gathering_sponsors: frozenset({S.in_moderation, S.open}),  # open directly when moderation is off
    S.in_moderation: frozenset({S.open, S.rejected, S.hidden}),
    S.open: frozenset({S.closed, S.hidden}),
    S.closed: frozenset({S.archived, S.hidden}),
    S.hidden: frozenset({S.open, S.closed}),  # a moderator restores it to where it belongs
    S.rejected: frozenset(),
    S.archived: frozenset(),
}


def can_transition(current: PetitionState, target: PetitionState) -> bool:
    return target in TRANSITIONS[current]


LABELS = {
    S.draft: N_("Draft"),
    S.gathering_sponsors: N_("Gathering sponsors"),
    S.in_moderation: N_("Waiting for moderation"),
    S.open: N_("Open for signatures"),
    S.closed: N_("Closed"),
    S.rejected: N_("Rejected"),
    S.hidden: N_("Hidden by moderators"),
    S.archived: N_("Archived"),
}
