"""Templates ask named questions of a petition or comment (`petition.takes_signatures`), never compare state
strings: a rule written once in app/models/lifecycle.py cannot drift from a copy in a template (issue #23)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.models import lifecycle
from app.models.comments import Comment, CommentState, Review
from app.models.lifecycle import PetitionState
from app.models.petitions import Petition

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# `x.state == "open"`, `state != ...`, `state in (...)`, `state not in ...`, and the same of a comment's review.
STATE_COMPARISON = re.compile(r"\b(state|review)\s*(==|!=|\bin\b|\bnot\s+in\b)")


def state_comparisons(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.html")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if STATE_COMPARISON.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    return found


def test_templates_compare_no_state_strings() -> None:
    found = state_comparisons(TEMPLATES)
    assert not found, "Ask lifecycle's named predicates instead (app/models/lifecycle.py):\n" + "\n".join(found)


def test_the_guard_sees_a_comparison(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        '{% if petition.state == "open" %}a{% endif %}\n{% if petition.state in ("open", "closed") %}b{% endif %}\n'
        '{% if c.state != "hidden" %}c{% endif %}\n{% if comment.review == "pending" %}d{% endif %}\n'
        '<span class="tag state-{{ petition.state }}">{{ state_label }}</span>\n'
    )
    assert [line.split(":")[1] for line in state_comparisons(tmp_path)] == ["1", "2", "3", "4"]


PREDICATES = {
    "takes_signatures": lifecycle.SIGNABLE_STATES,
    "takes_responses": lifecycle.RESPONDABLE_STATES,
    "is_active": lifecycle.ACTIVE_STATES,
    "shows_tally": lifecycle.TALLIED_STATES,
    "before_publication": lifecycle.BEFORE_PUBLICATION_STATES,
    "in_moderation_queue": lifecycle.MODERATION_QUEUE_STATES,
    "is_draft": {PetitionState.draft},
    "is_gathering_sponsors": {PetitionState.gathering_sponsors},
    "is_closed": {PetitionState.closed},
    "is_rejected": {PetitionState.rejected},
    "is_hidden": {PetitionState.hidden},
}


@pytest.mark.parametrize("state", list(PetitionState))
def test_each_petition_predicate_is_its_state_set(state: PetitionState) -> None:
    petition = Petition(state=state)  # the column holds members (tests/test_enum_columns.py)
    for name, states in PREDICATES.items():
        assert getattr(petition, name) is (state in states), (name, state)


@pytest.mark.parametrize("state", list(CommentState))
def test_each_comment_predicate_is_its_state(state: CommentState) -> None:
    comment = Comment(state=state.value, review=Review.pending.value)
    assert (comment.is_visible, comment.is_deleted, comment.is_hidden) == (
        state is CommentState.visible,
        state is CommentState.deleted,
        state is CommentState.hidden,
    )
    assert comment.awaiting_review
    assert not Comment(state=state.value, review=Review.done.value).awaiting_review
