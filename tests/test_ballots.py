"""Ballots' rules (issue #25): creating one, who may, its state, answering it and counting, through the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import answers
from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.ballots.counting import NotEnough, Results
from app.core.clock import FrozenClock
from app.core.errors import AppError, Conflict, Forbidden, InvalidInput
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service as signature_log
from app.models.accounts import Role
from app.models.ballots import (
    SCALE_OPTIONS,
    BallotAnswer,
    BallotAudience,
    BallotKind,
    BallotLeaf,
    BallotState,
)
from tests import factories
from tests.ballot_helpers import credential, petition_ballot, pulse_ballot

pytestmark = pytest.mark.one_database


def answer(db: Session, rt: Runtime, ballot_id: int, cred: tuple[bytes, bytes], choice: list[int]) -> int:
    return answers.submit(db=db, rt=rt, ballot_id=ballot_id, message=cred[0], signature=cred[1], choice=choice)


# -- creating ------------------------------------------------------------------------------------------------


def test_a_pulse_ballot_commits_its_texts_and_key_in_entry_zero(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt)
    assert ballots.labels(db=db, ballot=ballot) == ["Yes", "No", "Later"]
    assert ballot.max_choices == 1 and ballot.min_answers == rt.settings.min_group_size
    assert ballot.opens_at == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert ballots.state(ballot, rt.clock.now()) is BallotState.open
    leaf = db.scalars(select(BallotLeaf).where(BallotLeaf.ballot_id == ballot.id)).one()
    entry = json.loads(leaf.entry)
    assert entry == {
        "kind": "ballot",
        "ballot": ballot.id,
        "question": "Should the office open at eight?",
        "options": ["Yes", "No", "Later"],
        "kind_of_ballot": "single",
        "max_choices": 1,
        "audience": "members",
        "petition": None,
        "key_id": ballot.key_id,
        "opens_at": "2026-11-24T09:00:00Z",
        "closes_at": "2026-12-01T09:00:00Z",
        "min_answers": rt.settings.min_group_size,
    }
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    assert latest is not None and latest.size == 1
    public = signature_log.signing_key(rt).public_key()
    checked = notes.verify(latest.note, log_key=(ballot_log.origin(rt, ballot.id), public))
    assert checked.checkpoint.origin.endswith(f"/ballots/{ballot.id}")
    assert ballot_log.counters(latest.note) == {"credentials_issued": 0, "answers_counted": 0}


def test_a_scale_ballot_has_the_five_fixed_options(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt, kind=BallotKind.scale)
    assert ballots.labels(db=db, ballot=ballot) == list(SCALE_OPTIONS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"options": []}, "options"),
        ({"options": ["Only one"]}, "options"),
        ({"options": [f"Option {n}" for n in range(100)]}, "options"),
        ({"options": ["Yes", "yes "]}, "options"),
        ({"options": ["Yes", "x" * 201]}, "options"),
        ({"kind": BallotKind.scale, "options": ["A", "B"]}, "options"),
        ({"question": "   "}, "question"),
        ({"closes_at": datetime(2026, 11, 24, 8, tzinfo=UTC)}, "closes_at"),
        ({"days": 91}, "closes_at"),
        ({"closes_at": datetime(9999, 12, 31, 23, 59, tzinfo=UTC)}, "closes_at"),
        ({"opens_at": datetime(9999, 12, 31, 23, 59, tzinfo=UTC)}, "opens_at"),
        ({"opens_at": datetime(2026, 11, 30, 9, tzinfo=UTC), "days": 3}, "closes_at"),
        ({"kind": BallotKind.ranked, "max_choices": 6, "options": list("ABCDEFG")}, "max_choices"),
        ({"kind": BallotKind.single, "max_choices": 2}, "max_choices"),
        ({"min_answers": 2}, "min_answers"),
        ({"audience": BallotAudience.signers}, "audience"),
    ],
)
def test_a_ballot_that_breaks_a_rule_is_refused_with_the_field_named(
    db: Session, rt: Runtime, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        pulse_ballot(db, rt, **changes)  # type: ignore[arg-type]
    assert field in refused.value.fields
    assert db.scalar(select(BallotLeaf.ballot_id)) is None  # nothing half-written


def test_every_problem_is_listed_at_once(db: Session, rt: Runtime) -> None:
    with pytest.raises(InvalidInput) as refused:
        pulse_ballot(db, rt, question="", options=["A"], closes_at=rt.clock.now() - timedelta(hours=2))
    assert set(refused.value.fields) == {"question", "options", "closes_at"}


def test_a_plain_worker_cannot_put_a_question_to_everyone(db: Session, rt: Runtime) -> None:
    with pytest.raises(Forbidden):
        pulse_ballot(db, rt, author=factories.worker(db))
    admin = factories.worker(db, roles=(Role.admin,))
    assert pulse_ballot(db, rt, author=admin).petition_id is None


def test_only_a_petitions_organizers_add_a_ballot_to_it(db: Session, rt: Runtime) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    with pytest.raises(Forbidden):
        petition_ballot(db, rt, petition, factories.worker(db))
    ballot = petition_ballot(db, rt, petition, organizer)
    assert ballot.petition_id == petition.id and ballot.audience is BallotAudience.signers
    assert ballots.for_petition(db=db, petition=petition) == [ballot]


def test_times_are_whole_hours(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(
        db,
        rt,
        opens_at=datetime(2026, 11, 25, 10, 20, tzinfo=UTC),
        closes_at=datetime(2026, 11, 26, 10, 20, tzinfo=UTC),
    )
    assert ballot.opens_at == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert ballot.closes_at == datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert ballots.state(ballot, rt.clock.now()) is BallotState.scheduled
    assert ballots.state(ballot, datetime(2026, 11, 25, 10, tzinfo=UTC)) is BallotState.open
    assert ballots.state(ballot, datetime(2026, 11, 26, 11, tzinfo=UTC)) is BallotState.closed


# -- answering -----------------------------------------------------------------------------------------------


def test_an_answer_is_a_leaf_and_a_change_supersedes_it(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt)
    mine = credential(db, rt, ballot)
    assert answer(db, rt, ballot.id, mine, [0]) == 0
    assert answer(db, rt, ballot.id, mine, [2]) == 0
    rows = db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id).order_by(BallotAnswer.revision))
    assert [(row.revision, row.choice, row.superseded) for row in rows] == [(1, "[0]", True), (2, "[2]", False)]
    db.refresh(ballot)
    assert ballot.answers_counted == 1
    entries = [json.loads(leaf.entry) for leaf in ballot_log.leaves(db=db, ballot_id=ballot.id, start=0, end=10)]
    assert [entry["kind"] for entry in entries] == ["ballot", "answer", "answer"]
    assert [entry["revision"] for entry in entries[1:]] == [1, 2]
    assert all(row.counted_hour == datetime(2026, 11, 24, 9, tzinfo=UTC) for row in rows)
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    assert latest is not None and latest.size == 3
    assert ballot_log.counters(latest.note) == {"credentials_issued": 1, "answers_counted": 1}


def _refused(db: Session, rt: Runtime, ballot_id: int, cred: tuple[bytes, bytes], choice: list[int]) -> AppError:
    with pytest.raises(AppError) as refused:
        answer(db, rt, ballot_id, cred, choice)
    assert db.scalar(select(BallotAnswer.id).where(BallotAnswer.ballot_id == ballot_id)) is None
    return refused.value


def test_bad_answers_are_refused_in_plain_words_and_nothing_is_counted(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt, kind=BallotKind.ranked, options=["A", "B", "C", "D"], max_choices=3)
    other = pulse_ballot(db, rt)
    mine = credential(db, rt, ballot)
    foreign = credential(db, rt, other)
    assert _refused(db, rt, ballot.id, foreign, [0]).status_code == 400  # another ballot's credential
    assert "not valid for this poll" in _refused(db, rt, ballot.id, foreign, [0]).message
    assert _refused(db, rt, ballot.id, (mine[0], mine[1][:-1] + b"\0"), [0]).status_code == 400  # forged
    assert "does not exist" in _refused(db, rt, ballot.id, mine, [4]).message
    assert "once" in _refused(db, rt, ballot.id, mine, [1, 1]).message
    assert "at most 3" in _refused(db, rt, ballot.id, mine, [0, 1, 2, 3]).message
    assert _refused(db, rt, ballot.id, mine, []).status_code == 400
    assert _refused(db, rt, ballot.id, mine, [-1]).status_code == 400


def test_the_same_answer_twice_is_not_a_change(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt, kind=BallotKind.multiple, options=["A", "B", "C"])
    mine = credential(db, rt, ballot)
    answer(db, rt, ballot.id, mine, [2, 0])
    with pytest.raises(Conflict, match="already counted"):
        answer(db, rt, ballot.id, mine, [0, 2])  # the same set, in another order
    assert db.scalar(select(BallotAnswer.choice).where(BallotAnswer.ballot_id == ballot.id)) == "[0,2]"


def test_no_answer_before_opening_or_after_closing(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    ballot = pulse_ballot(db, rt, opens_at=rt.clock.now() + timedelta(hours=2), days=1)
    mine = credential(db, rt, ballot)
    with pytest.raises(Conflict, match="not open yet"):
        answer(db, rt, ballot.id, mine, [0])
    clock.advance(timedelta(days=2))
    with pytest.raises(Conflict, match="closed"):
        answer(db, rt, ballot.id, mine, [0])
    assert db.scalar(select(BallotAnswer.id)) is None


def test_closing_early_stops_answers(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    author = factories.worker(db, roles=(Role.responder,))
    ballot = pulse_ballot(db, rt, author=author)
    mine = credential(db, rt, ballot)
    with pytest.raises(Forbidden):
        ballots.close_early(db, rt, actor=factories.worker(db), ballot=ballot)
    clock.advance(timedelta(minutes=90))
    ballots.close_early(db, rt, actor=author, ballot=ballot)
    # Closed at 10:30: the end of that hour, so answers accepted before are through their batch before the result.
    assert ballot.closed_early and ballot.closes_at == datetime(2026, 11, 24, 11, tzinfo=UTC)
    assert ballots.state(ballot, rt.clock.now()) is BallotState.closed
    with pytest.raises(Conflict, match="closed"):
        answer(db, rt, ballot.id, mine, [0])


def test_texts_freeze_once_the_poll_opens(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    """Before the opening everything may change; from then on only the note and the closing time: answers accepted
    since may wait for their batch in any server's memory (tests/test_ballot_attacks.py has the swap it stops)."""
    author = factories.worker(db, roles=(Role.responder,))
    opening = rt.clock.now() + timedelta(hours=3)
    ballot = pulse_ballot(db, rt, author=author, opens_at=opening, closes_at=opening + timedelta(days=2))
    assert ballots.state(ballot, rt.clock.now()) is BallotState.scheduled
    edit = {
        "question": "Should the office open at nine?",
        "options": ["Yes", "No"],
        "max_choices": None,
        "opens_at": opening,
        "closes_at": ballot.closes_at,
        "results_live": False,
        "min_answers": None,
        "note": None,
    }
    ballots.edit(db, rt, actor=author, ballot=ballot, **edit)  # type: ignore[arg-type]
    assert ballots.labels(db=db, ballot=ballot) == ["Yes", "No"]
    entries = [json.loads(leaf.entry) for leaf in ballot_log.leaves(db=db, ballot_id=ballot.id, start=0, end=9)]
    assert [entry["question"] for entry in entries] == ["Should the office open at eight?", edit["question"]]
    clock.advance(timedelta(hours=3))
    assert ballots.state(ballot, rt.clock.now()) is BallotState.open
    # Open, no answer counted yet: the texts, the rules and the options' order are fixed all the same.
    for change in (
        {"question": "Something else?"},
        {"options": ["No", "Yes"]},
        {"max_choices": 2},
        {"results_live": True},
        {"min_answers": rt.settings.min_group_size + 1},
    ):
        with pytest.raises(Conflict, match="is open") as refused:
            ballots.edit(db, rt, actor=author, ballot=ballot, **{**edit, **change})  # type: ignore[arg-type]
        assert set(refused.value.fields or {}) == set(change)
    db.refresh(ballot)
    assert ballot.question == edit["question"] and ballots.labels(db=db, ballot=ballot) == ["Yes", "No"]
    # The note and the closing time still change (the same texts sent along are no change), before and after answers.
    later = ballot.closes_at + timedelta(days=1)
    ballots.edit(db, rt, actor=author, ballot=ballot, **{**edit, "closes_at": later, "note": "One more day."})  # type: ignore[arg-type]
    assert ballot.closes_at == later and ballot.note == "One more day."
    answer(db, rt, ballot.id, credential(db, rt, ballot), [1])
    size = ballot_log.size(db, ballot.id)
    ballots.edit(db, rt, actor=author, ballot=ballot, **{**edit, "closes_at": later, "note": "Thanks!"})  # type: ignore[arg-type]
    assert ballot.note == "Thanks!"
    assert ballot_log.size(db, ballot.id) == size  # no ballot entry after a counted answer
    # A closing time in the past is refused in words.
    with pytest.raises(InvalidInput) as past:
        ballots.edit(
            db,
            rt,
            actor=author,
            ballot=ballot,
            **{**edit, "closes_at": rt.clock.now() - timedelta(hours=1)},  # type: ignore[arg-type]
        )
    assert "closes_at" in (past.value.fields or {})


# -- results -------------------------------------------------------------------------------------------------


def test_results_hidden_until_close_then_suppressed_below_k(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    ballot = pulse_ballot(db, rt, days=1, min_answers=5)
    for choice in ([0], [1], [0], [0]):
        answer(db, rt, ballot.id, credential(db, rt, ballot), choice)
    assert isinstance(ballots.results(db, rt, ballot), ballots.Hidden)
    clock.advance(timedelta(days=1))
    assert ballots.results(db, rt, ballot) == NotEnough(min_answers=5)


def test_results_at_close(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    ballot = pulse_ballot(db, rt, days=1, min_answers=5)
    creds = [credential(db, rt, ballot) for _ in range(6)]
    for cred, choice in zip(creds, ([0], [1], [0], [0], [2], [1]), strict=True):
        answer(db, rt, ballot.id, cred, choice)
    answer(db, rt, ballot.id, creds[5], [0])  # a change: only the last counts
    clock.advance(timedelta(days=1))
    found = ballots.results(db, rt, ballot)
    assert isinstance(found, Results) and found.answers == 6
    assert [option.count for option in found.options] == [4, 1, 1]


def test_live_results_show_while_open(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt, results_live=True, min_answers=5)
    for _ in range(5):
        answer(db, rt, ballot.id, credential(db, rt, ballot), [1])
    found = ballots.results(db, rt, ballot)
    assert isinstance(found, Results) and found.options[1].share == 1.0


def test_ratification_asks_the_signers_once_per_response(db: Session, rt: Runtime) -> None:
    from app.models.responses import PetitionResponse, ResponseStatus

    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    response = PetitionResponse(
        petition_id=petition.id,
        responder_id=None,
        summary="We will look into it",
        details="Details.",
        status=ResponseStatus.acknowledged,
        created_at=rt.clock.now(),
    )
    db.add(response)
    db.flush()
    ballot = ballots.open_ratification(
        db, rt, actor=organizer, petition=petition, response=response, closes_at=rt.clock.now() + timedelta(days=7)
    )
    assert ballot.response_id == response.id and ballot.audience is BallotAudience.signers
    assert ballots.labels(db=db, ballot=ballot) == ["Yes", "Partly", "No"]
    assert ballot.question == ballots.RATIFICATION_QUESTION
    ballots.edit(
        db,
        rt,
        actor=organizer,
        ballot=ballot,
        question="Do you like the new canteen?",
        options=["Sure"],
        max_choices=None,
        opens_at=None,
        closes_at=ballot.closes_at,
        results_live=False,
        min_answers=None,
        note="We think it is a start.",
    )
    assert ballot.question == ballots.RATIFICATION_QUESTION and ballot.note == "We think it is a start."
    assert ballots.labels(db=db, ballot=ballot) == ["Yes", "Partly", "No"]
    with pytest.raises(Conflict):
        ballots.open_ratification(
            db, rt, actor=organizer, petition=petition, response=response, closes_at=rt.clock.now() + timedelta(days=7)
        )


def test_a_closed_ballots_key_is_destroyed(db: Session, rt: Runtime, clock: FrozenClock) -> None:
    ballot = pulse_ballot(db, rt, days=1)
    assert ballots.destroy_closed_keys(db=db, rt=rt) == 0
    clock.advance(timedelta(days=1))
    assert ballots.destroy_closed_keys(db=db, rt=rt) == 1
    assert ballot.sealed_private is None
    with pytest.raises(LookupError):
        ballots.signer_for(rt=rt, ballot=ballot)


def test_the_jobs_round_signs_moved_counters_once(db: Session, rt: Runtime) -> None:
    ballot = pulse_ballot(db, rt)
    assert ballots.refresh_checkpoints(db=db, rt=rt) == 0  # nothing moved since entry 0's checkpoint
    credential(db, rt, ballot)
    credential(db, rt, ballot)
    assert ballots.refresh_checkpoints(db=db, rt=rt) == 1
    latest = ballot_log.latest_checkpoint(db=db, ballot_id=ballot.id)
    assert latest is not None and ballot_log.counters(latest.note)["credentials_issued"] == 2
    assert ballots.refresh_checkpoints(db=db, rt=rt) == 0
