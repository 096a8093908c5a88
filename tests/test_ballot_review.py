"""An attacker's review of this session's poll changes (issue #25): polls put to departments or locations, their
verification, and changing a poll through PATCH.

Each test plays one attack and fails while the weakness it names is there:
- an organizer who reads how many members stated a department from the refusal of a poll too small for a result,
  and tries again later to see who joined (the refusal says "fewer than", never how many);
- a server that commits one audience in entry 0 and another in a later "ballot" entry, showing the later one, so
  `undersigned verify` compares the page with the last entry and passes while credentials went to others;
- the same organizer searching the poll's minimum of answers instead, which measured any set of groups exactly
  and a small department by differencing two sets (the refusal now compares with k alone);
- two polls a small group apart, whose results subtract to that group's answers (each group must reach k);
- the same lie as above about the kind of ballot;
- an API client that sends a poll's audience, groups or kind in a PATCH, or moves an open poll's opening, and is
  told 200 while nothing changed;
- a group id too large for the database's integer, which must be refused in words, not answered with a 500;
- times sent in a half-hour zone, which opened and closed a poll at :30;
- an edit that waited for the poll's lock across its opening, which still changed the texts;
- two organizers editing at once, the second writing back the question the first had just changed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from app.ballots import answers, audiences, editing
from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.clients import ballots as ballot_client
from app.core.clock import FrozenClock, to_the_hour
from app.core.errors import Conflict, InvalidInput
from app.core.runtime import Runtime
from app.models.ballots import Ballot, BallotAudience, BallotGroup, BallotKind
from app.models.signatures import GroupKind
from tests import ballot_helpers
from tests.conftest import Browser, sign_in_as
from tests.test_ballot_audiences import group, groups_ballot, members_of


def _refusal(db: Session, rt: Runtime, group_ids: list[int], min_answers: int | None = None) -> str:
    with pytest.raises(InvalidInput) as refused:
        ballots.create(
            db,
            rt,
            actor=ballot_helpers.pulse_author(db),
            petition=None,
            kind=BallotKind.single,
            question="Should the on-call rota change?",
            options=["Yes", "No"],
            max_choices=None,
            audience=BallotAudience.groups,
            opens_at=None,
            closes_at=rt.clock.now() + timedelta(days=3),
            min_answers=min_answers,
            groups=group_ids,
        )
    db.rollback()
    return str(refused.value.fields["groups"])


def test_a_refused_small_audience_does_not_say_how_many_stated_its_groups(db: Session, rt: Runtime) -> None:
    """The organizer asks for a poll put to Lyon alone before and after a colleague states Lyon on their account:
    the two refusals must read the same, or their difference says someone joined Lyon, and which count it reached
    (with a department of one, who that is)."""
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, lyon, 1)
    before = _refusal(db, rt, [lyon.id])
    members_of(db, lyon, 2)
    after = _refusal(db, rt, [lyon.id])
    assert before == after, (before, after)
    assert not re.search(r"\b[1-3]\b", after), after
    assert "fewer than" in after.lower()


def _accepted(db: Session, rt: Runtime, group_ids: list[int], min_answers: int) -> bool:
    """Whether a poll put to these groups with this minimum is created (then undone: the attacker only asks)."""
    try:
        _refusal(db, rt, group_ids, min_answers=min_answers)
    except pytest.fail.Exception:
        db.rollback()
        return True
    return False


def test_a_small_department_is_not_counted_by_differencing_minimums(db: Session, rt: Runtime) -> None:
    """Without a number in the refusal, the organizer searches the minimum of answers instead: the largest minimum
    accepted for Engineering and Lyon together, less the largest for Lyon alone, is how many stated Engineering
    (departments do not overlap): 2 here, below k. The answer to "can this poll be created" must not depend on
    more than whether the audience reaches k."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, engineering, 2)
    members_of(db, lyon, 6)
    k = rt.settings.min_group_size
    both = [_accepted(db, rt, [engineering.id, lyon.id], minimum) for minimum in range(k, k + 6)]
    alone = [_accepted(db, rt, [lyon.id], minimum) for minimum in range(k, k + 6)]
    # Whatever else the refusal tells (whether each group reaches k), it must not move with the minimum chosen.
    assert len(set(both)) == 1 and len(set(alone)) == 1, (both, alone)


def test_two_polls_one_small_group_apart_do_not_tell_that_groups_answers(
    db: Session, rt: Runtime, clock: FrozenClock
) -> None:
    """The same question put to Engineering and Lyon, and to Lyon alone: each audience reaches k, but Lyon's six
    answer both alike, so the first result less the second is the two Engineering members' answers. A poll's
    audience may only be built of groups each of which reaches k on its own."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, engineering, 2)
    members_of(db, lyon, 6)
    try:
        both = groups_ballot(db, rt, [engineering, lyon], days=1, results_live=True)
    except InvalidInput as refused:
        db.rollback()
        assert "groups" in refused.fields
        return
    alone = groups_ballot(db, rt, [lyon], days=1, results_live=True)
    engineers, lyon_answers = [[1], [1]], [[0], [0], [0], [2], [2], [0]]
    for ballot, choices in ((both, engineers + lyon_answers), (alone, lyon_answers)):
        for choice in choices:
            message, signature = ballot_helpers.credential(db, rt, ballot)
            answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=choice)
        db.commit()
    first, second = ballots.results(db, rt, both), ballots.results(db, rt, alone)
    assert isinstance(first, ballots.counting.Results) and isinstance(second, ballots.counting.Results)
    difference = [a.count - b.count for a, b in zip(first.options, second.options, strict=True)]
    assert difference != [0, 2, 0], "the two Engineering members' answers, read by differencing two polls"


def _verify(client: TestClient, ballot: Ballot, state: Path) -> ballot_client.BallotReport:
    def fetch(path: str) -> tuple[int, Any]:
        response = client.get(path)
        return response.status_code, response.json()

    url = f"http://testserver/polls/{ballot.id}"
    return ballot_client.verify(ballot_client.download(url, fetch), state)


def _rewrite_audience(db: Session, rt: Runtime, ballot: Ballot, keep: list[int]) -> None:
    """The lying server: issuance went to entry 0's groups, but a later ballot entry (as an edit appends) and the
    API name fewer of them."""
    db.execute(delete(BallotGroup).where(BallotGroup.ballot_id == ballot.id, BallotGroup.group_id.not_in(keep)))
    db.flush()
    ballot_log.append_ballot_entry(
        db=db,
        rt=rt,
        ballot=ballot,
        labels=ballots.labels(db=db, ballot=ballot),
        groups=audiences.log_entries(audiences.audience_groups(db=db, ballot=ballot)),
        now=rt.clock.now(),
    )
    db.commit()


@pytest.mark.parametrize("with_result", [False, True])
def test_verify_catches_a_later_ballot_entry_that_changes_the_audience(
    db: Session, rt: Runtime, client: TestClient, clock: FrozenClock, tmp_path: Path, with_result: bool
) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, engineering, 5)
    members_of(db, lyon, 5)
    ballot = groups_ballot(db, rt, [engineering, lyon], days=1)
    db.commit()
    _rewrite_audience(db, rt, ballot, keep=[engineering.id])
    entries = [json.loads(leaf.entry) for leaf in ballot_log.leaves(db=db, ballot_id=ballot.id, start=0, end=2)]
    assert [len(entry["groups"]) for entry in entries] == [2, 1]
    if with_result:
        for choice in ([0], [1], [0], [0], [1]):
            message, signature = ballot_helpers.credential(db, rt, ballot)
            answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=choice)
        db.commit()
        clock.advance(timedelta(days=1))
    report = _verify(client, ballot, tmp_path / "state.json")
    assert report.withheld is not with_result
    assert any("audience" in problem for problem in report.problems), report.problems


@pytest.mark.parametrize("with_result", [False, True])
def test_verify_catches_a_later_ballot_entry_that_changes_the_kind(
    db: Session, rt: Runtime, client: TestClient, clock: FrozenClock, tmp_path: Path, with_result: bool
) -> None:
    """The same lie about the kind: entry 0 a single choice, a later entry (and the API) a multiple choice of two,
    so answers naming two options are counted under rules the poll was not created with."""
    ballot = ballot_helpers.pulse_ballot(db, rt, days=1)
    ballot.kind, ballot.max_choices = BallotKind.multiple, 2
    db.flush()
    ballot_log.append_ballot_entry(
        db=db, rt=rt, ballot=ballot, labels=ballots.labels(db=db, ballot=ballot), now=rt.clock.now()
    )
    db.commit()
    if with_result:
        for choice in ([0, 1], [1], [0, 2], [0], [1, 2]):
            message, signature = ballot_helpers.credential(db, rt, ballot)
            answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=choice)
        db.commit()
        clock.advance(timedelta(days=1))
    report = _verify(client, ballot, tmp_path / "state.json")
    assert report.withheld is not with_result
    assert any("kind" in problem for problem in report.problems), report.problems


def test_verify_still_passes_an_honest_edit_before_the_opening(
    db: Session, rt: Runtime, client: TestClient, tmp_path: Path
) -> None:
    """The check above must not refuse what an honest edit writes: a ballot entry with the same audience."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    members_of(db, engineering, 5)
    author = ballot_helpers.pulse_author(db)
    ballot = groups_ballot(db, rt, [engineering], author=author, days=3, opens_at=rt.clock.now() + timedelta(days=1))
    db.commit()
    ballots.edit(
        db,
        rt,
        actor=author,
        ballot=ballot,
        question="Should the on-call rota change soon?",
        options=["Yes", "No"],
        max_choices=None,
        opens_at=ballot.opens_at,
        closes_at=ballot.closes_at,
        results_live=False,
        min_answers=None,
        note=None,
    )
    db.commit()
    assert ballot_log.size(db, ballot.id) == 2
    report = _verify(client, ballot, tmp_path / "state.json")
    assert report.ok, report.problems


@pytest.mark.parametrize(
    "sent",
    [
        {"audience": "members"},
        {"groups": []},
        {"kind": "multiple"},
        {"petition_id": 1},
    ],
)
def test_a_patch_naming_what_cannot_change_is_refused_not_ignored(
    browser: Browser, db: Session, rt: Runtime, sent: dict[str, object]
) -> None:
    """PATCH /api/v1/ballots/{id} changes none of these (kind, audience, groups and petition are fixed from the
    creation): a 200 would tell the client the poll is now put to every member while it still is not."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    members_of(db, engineering, 5)
    author = ballot_helpers.pulse_author(db)
    ballot = groups_ballot(db, rt, [engineering], author=author, opens_at=rt.clock.now() + timedelta(days=1))
    db.commit()
    sign_in_as(browser, db, author)
    response = browser.api("PATCH", f"/api/v1/ballots/{ballot.id}", {"note": "Changed", **sent})
    assert response.status_code == 422, response.text
    db.expire_all()
    changed = db.get_one(Ballot, ballot.id)
    assert changed.note is None and changed.audience is BallotAudience.groups
    assert ballot_log.size(db, ballot.id) == 1


def test_a_group_id_beyond_the_databases_integers_is_refused_in_words(
    browser: Browser, db: Session, rt: Runtime
) -> None:
    author = ballot_helpers.pulse_author(db)
    sign_in_as(browser, db, author)
    before = db.scalar(select(func.count()).select_from(Ballot))
    body = {
        "kind": "single",
        "question": "Should the on-call rota change?",
        "options": ["Yes", "No"],
        "audience": "groups",
        "groups": [2**70],
        "closes_at": (rt.clock.now() + timedelta(days=3)).isoformat(),
    }
    response = browser.api("POST", "/api/v1/ballots", body)
    assert response.status_code == 422, response.text
    assert db.scalar(select(func.count()).select_from(Ballot)) == before


def test_a_patch_moving_an_open_polls_opening_is_refused_not_ignored(
    browser: Browser, db: Session, rt: Runtime
) -> None:
    """Once a poll opens only its note and closing time change, and a change to another field is refused (409,
    field by field): an opening moved to tomorrow was answered 200 with nothing moved, so the client believed the
    poll would wait for tomorrow while members were already answering it."""
    author = ballot_helpers.pulse_author(db)
    ballot = ballot_helpers.pulse_ballot(db, rt, author=author)
    sign_in_as(browser, db, author)
    tomorrow = (rt.clock.now() + timedelta(days=1)).isoformat()
    response = browser.api("PATCH", f"/api/v1/ballots/{ballot.id}", {"opens_at": tomorrow, "note": "Tomorrow"})
    assert response.status_code == 409, response.text
    assert "opens_at" in response.json()["error"]["fields"]
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).note is None
    # Sent back as read (GET, then PATCH of the whole object), the opening is no change and the rest applies.
    same = browser.api(
        "PATCH", f"/api/v1/ballots/{ballot.id}", {"opens_at": ballot.opens_at.isoformat(), "note": "Same opening"}
    )
    assert same.status_code == 200, same.text


def test_times_given_in_a_half_hour_zone_still_fall_on_whole_hours(db: Session, rt: Runtime) -> None:
    """The API takes any offset: 12:00 in India is 06:30 UTC, and rounding it in its own zone kept the half hour, so
    a poll opened and closed at :30, off the whole hours every other poll and batch keeps. Extreme years in any
    zone are still refused in words, not an overflow."""
    india = timezone(timedelta(hours=5, minutes=30))
    start = (rt.clock.now() + timedelta(days=1)).astimezone(india).replace(hour=12, minute=0, second=0, microsecond=0)
    ballot = ballot_helpers.pulse_ballot(db, rt, opens_at=start, closes_at=start + timedelta(days=2))
    db.expire_all()
    ballot = db.get_one(Ballot, ballot.id)
    stored = [moment.astimezone(UTC) for moment in (ballot.opens_at, ballot.closes_at)]
    assert [moment.minute for moment in stored] == [0, 0], stored
    assert ballot.opens_at <= start and ballot.closes_at >= start + timedelta(days=2)
    for closes_at in (
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-14))),
    ):
        try:
            ballot_helpers.pulse_ballot(db, rt, closes_at=closes_at)
        except InvalidInput:
            db.rollback()


def test_an_edit_that_waited_for_the_lock_across_the_opening_cannot_change_the_texts(
    db: Session, rt: Runtime, clock: FrozenClock
) -> None:
    """An edit decided whether the poll had opened with the time read before it waited for the poll's lock: one
    that waited past the opening hour (a batch or another edit held the lock) still changed the question, after
    credentials were handed out and answers to the old question could be waiting for their batch. The wait is
    played by moving the clock when the lock is asked for; no time passes in the test."""
    author = ballot_helpers.pulse_author(db)
    opens = to_the_hour(rt.clock.now()) + timedelta(hours=1)
    ballot = ballot_helpers.pulse_ballot(db, rt, author=author, opens_at=opens)
    clock.advance(opens - timedelta(seconds=1) - clock.now())

    def wait_for_the_lock(state: ORMExecuteState) -> None:
        if getattr(state.statement, "_for_update_arg", None) is not None:
            clock.advance(timedelta(seconds=2))

    event.listen(db, "do_orm_execute", wait_for_the_lock)
    try:
        with pytest.raises(Conflict):
            ballots.edit(
                db,
                rt,
                actor=author,
                ballot=ballot,
                question="A question nobody was asked",
                options=["Yes", "No", "Later"],
                max_choices=None,
                opens_at=ballot.opens_at,
                closes_at=ballot.closes_at,
                results_live=False,
                min_answers=None,
                note=None,
            )
    finally:
        event.remove(db, "do_orm_execute", wait_for_the_lock)
    db.rollback()
    assert db.get_one(Ballot, ballot.id).question == "Should the office open at eight?"


def test_a_change_that_leaves_the_question_out_keeps_the_one_another_organizer_just_set(
    db: Session, rt: Runtime
) -> None:
    """Two organizers of a scheduled poll: one sends a new question, the other only a note (PATCH, "a field left
    out keeps its value"). The second read the question to keep before waiting for the poll's lock, so once the
    first had committed it wrote the old question back. Played by committing the first change when the second asks
    for the lock (an ORM execute hook: the same interleaving, no time passes)."""
    author = ballot_helpers.pulse_author(db)
    ballot = ballot_helpers.pulse_ballot(db, rt, author=author, opens_at=rt.clock.now() + timedelta(days=1))
    first_change = {"done": False}

    def the_other_edit_commits(state: ORMExecuteState) -> None:
        if getattr(state.statement, "_for_update_arg", None) is not None and not first_change["done"]:
            first_change["done"] = True
            state.session.connection().execute(
                update(Ballot).where(Ballot.id == ballot.id).values(question="Should the office open at nine?")
            )

    event.listen(db, "do_orm_execute", the_other_edit_commits)
    try:
        editing.apply(db, rt, actor=author, ballot=ballot, change=editing.Change(note="Bring your badge."))
    finally:
        event.remove(db, "do_orm_execute", the_other_edit_commits)
    db.commit()
    db.expire_all()
    changed = db.get_one(Ballot, ballot.id)
    assert changed.note == "Bring your badge."
    assert changed.question == "Should the office open at nine?", "the other organizer's question was written over"
