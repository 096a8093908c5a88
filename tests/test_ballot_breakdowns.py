"""Breakdowns of a poll's result by department or location (issue #25): a member of a poll put to several groups
may count their answer under one of their groups, told first among how many it then hides; the breakdown is shown
only once the poll has closed and its last batch is in, and only through the reports' small-cell suppression.

The adversarial tests play:
- a client that attaches a group the poll is not put to, one too few people hold the credential in, or a group to
  a poll with no breakdown (refused in words, nothing counted);
- an attacker holding the database files (no keys), the logs and the public log leaves, who tries to read each
  answer's group (sealed under a per-poll context, every row sealed alike, so equal groups do not look equal);
- anyone reading the page, the API, the downloads or the log leaves before the close, while answers come in
  (nothing per group, not even on a poll whose results show live);
- the operator with every key, who opens each answer's group and counts the accounts it could be (at least k);
- someone who differences the published cells against the result's option totals, and the zeros of a row that
  would say where a small group's answers are not.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import date, timedelta
from html.parser import HTMLParser
from itertools import product
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.ballots import answers
from app.ballots import log as ballot_log
from app.clients import ballots as ballot_client
from app.core import b64url, crypto
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.ballots import (
    Ballot,
    BallotAnswer,
    BallotAudience,
    BallotIssuance,
    BallotKind,
    BallotLeaf,
    MemberGroup,
)
from app.models.signatures import GroupKind
from app.privacy import rotation
from app.reports.suppression import suppress_table
from tests import ballot_helpers
from tests.conftest import Browser, sign_in_as
from tests.test_ballot_audiences import group, members_of
from tests.test_ballots_verify import fetch_with, run_verify

K = 5  # the test settings' minimum group size


def collected(db: Session, ballot: Ballot, people: list[User]) -> None:
    """These members collected the poll's credential (the wallet's issuance row: account, poll, day)."""
    db.add_all(
        BallotIssuance(account_id=person.id, ballot_id=ballot.id, issued_on=date(2026, 11, 24)) for person in people
    )
    db.commit()


def send(client: TestClient, ballot: Ballot, cred: tuple[bytes, bytes], choice: list[int], group_id: Any) -> Any:
    body: dict[str, Any] = {"message": b64url.encode(cred[0]), "signature": b64url.encode(cred[1]), "choice": choice}
    if group_id is not ...:
        body["group"] = group_id
    return client.post(f"/api/v1/ballots/{ballot.id}/answers", json=body)


@pytest.fixture
def anonymous_client(app: Any) -> Any:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def setting(db: Session, rt: Runtime) -> dict[str, Any]:
    """A poll (Yes / No) put to Engineering (15 members) and Lyon (7), every member holding its credential."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    sales = group(db, rt, GroupKind.department, "Sales")
    people = {"engineering": members_of(db, engineering, 15), "lyon": members_of(db, lyon, 7)}
    members_of(db, sales, 5)
    ballot = ballot_helpers.pulse_ballot(
        db, rt, options=["Yes", "No"], audience=BallotAudience.groups, groups=[engineering.id, lyon.id], days=1
    )
    collected(db, ballot, people["engineering"] + people["lyon"])
    return {"ballot": ballot, "engineering": engineering, "lyon": lyon, "sales": sales, "people": people}


def answer_all(db: Session, rt: Runtime, client: TestClient, setting: dict[str, Any]) -> None:
    """Engineering: 9 Yes, 6 No; Lyon: 5 Yes, 2 No (every answer under its group)."""
    ballot, engineering, lyon = setting["ballot"], setting["engineering"], setting["lyon"]
    plan = [(engineering.id, [0])] * 9 + [(engineering.id, [1])] * 6 + [(lyon.id, [0])] * 5 + [(lyon.id, [1])] * 2
    for group_id, choice in plan:
        cred = ballot_helpers.credential(db, rt, ballot)
        db.commit()
        response = send(client, ballot, cred, choice, group_id)
        assert response.status_code == 202, response.text


# Bad input: refused in words, nothing counted ----------------------------------------------------------------


@pytest.mark.one_database
def test_a_group_the_poll_is_not_put_to_or_too_few_hold_is_refused(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any]
) -> None:
    ballot = setting["ballot"]
    small = group(db, rt, GroupKind.location, "Nantes")
    few = members_of(db, small, 6)
    # A poll put to Engineering and Nantes, where only four of Nantes's six members collected the credential.
    other = ballot_helpers.pulse_ballot(
        db, rt, audience=BallotAudience.groups, groups=[setting["engineering"].id, small.id]
    )
    collected(db, other, few[:4])
    cases = [
        (ballot, setting["sales"].id, "not one this poll is put to"),
        (ballot, 424242, "not one this poll is put to"),
        (other, small.id, f"Fewer than {K} of its members"),
    ]
    for poll, group_id, words in cases:
        cred = ballot_helpers.credential(db, rt, poll)
        db.commit()
        refused = send(anonymous_client, poll, cred, [0], group_id)
        assert refused.status_code == 400, refused.text
        assert words in refused.json()["error"]["message"]
        assert "group" in refused.json()["error"]["fields"]
    assert db.scalar(select(func.count()).select_from(BallotAnswer)) == 0


@pytest.mark.one_database
@pytest.mark.parametrize("sent", [True, "1", 1.0, [1]], ids=["true", "a string", "a float", "a list"])
def test_a_group_that_is_not_a_whole_number_is_refused_in_words(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any], sent: Any
) -> None:
    """A client that sends `true` (a checkbox's value, a bug) must not count the answer under whichever group has
    the id 1: the group is a row id, and only a JSON whole number is one."""
    ballot = setting["ballot"]
    cred = ballot_helpers.credential(db, rt, ballot)
    db.commit()
    refused = send(anonymous_client, ballot, cred, [0], sent)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"]["group"] == "Enter a whole number, like 12."
    assert db.scalar(select(func.count()).select_from(BallotAnswer)) == 0


@pytest.mark.one_database
def test_a_group_on_a_poll_without_a_breakdown_is_refused(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any]
) -> None:
    members = ballot_helpers.pulse_ballot(db, rt, question="Should Fridays be remote?")
    one_group = ballot_helpers.pulse_ballot(
        db, rt, question="Should the rota change?", audience=BallotAudience.groups, groups=[setting["engineering"].id]
    )
    for poll, words in ((members, "not put to departments or locations"), (one_group, "one department or location")):
        cred = ballot_helpers.credential(db, rt, poll)
        db.commit()
        refused = send(anonymous_client, poll, cred, [0], setting["engineering"].id)
        assert refused.status_code == 400, refused.text
        assert words in refused.json()["error"]["message"]
        # Without a group the same credential answers.
        assert send(anonymous_client, poll, cred, [0], None).status_code == 202
    assert db.scalar(select(func.count()).select_from(BallotAnswer)) == 2


# The database, the logs and the public leaves: no group per answer -------------------------------------------


def test_a_dump_does_not_show_which_answers_carry_which_group(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any]
) -> None:
    ballot, engineering, lyon = setting["ballot"], setting["engineering"], setting["lyon"]
    sent = [(engineering.id, [0]), (engineering.id, [0]), (lyon.id, [0]), (None, [0])]
    for group_id, choice in sent:
        cred = ballot_helpers.credential(db, rt, ballot)
        db.commit()
        assert send(anonymous_client, ballot, cred, choice, group_id).status_code == 202
    rows = list(db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id)))
    assert len(rows) == 4
    sealed = [bytes(row.sealed_group or b"") for row in rows]
    # Every row is sealed alike, with or without a group: same length, never equal (a random nonce each), so a
    # dump can neither tell grouped answers from others nor gather the answers of one group.
    assert len({len(value) for value in sealed}) == 1
    assert len(set(sealed)) == 4
    # No other column could carry it: the row's columns are the ones it had before groups, and the sealed one.
    assert {column.name for column in BallotAnswer.__table__.columns} == {
        "id",
        "ballot_id",
        "credential",
        "message",
        "signature",
        "revision",
        "choice",
        "counted_hour",
        "superseded",
        "log_index",
        "sealed_group",
    }
    # The public leaves carry no group either (they are the same as before groups existed).
    for leaf in db.scalars(select(BallotLeaf).where(BallotLeaf.ballot_id == ballot.id)):
        entry = json.loads(leaf.entry)
        if entry["kind"] == "answer":
            assert set(entry) == {"kind", "message", "signature", "revision", "choice"}


def test_the_operator_with_every_key_finds_each_grouped_answer_among_k_accounts(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any]
) -> None:
    answer_all(db, rt, anonymous_client, setting)
    ballot = setting["ballot"]
    holders = set(db.scalars(select(BallotIssuance.account_id).where(BallotIssuance.ballot_id == ballot.id)))
    for row in db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id)):
        group_id = answers.answer_group(rt, row)  # the operator holds the sealing key
        assert group_id is not None
        stated = set(db.scalars(select(MemberGroup.account_id).where(MemberGroup.group_id == group_id)))
        assert len(holders & stated) >= K


def test_a_changed_group_is_a_change_of_answer_and_only_the_last_counts(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any]
) -> None:
    ballot, engineering = setting["ballot"], setting["engineering"]
    cred = ballot_helpers.credential(db, rt, ballot)
    db.commit()
    assert send(anonymous_client, ballot, cred, [0], None).status_code == 202
    again = send(anonymous_client, ballot, cred, [0], None)
    assert again.status_code == 409  # the same answer again is not a change
    assert send(anonymous_client, ballot, cred, [0], engineering.id).status_code == 202
    rows = list(db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id)))
    assert sorted((row.revision, row.superseded) for row in rows) == [(1, True), (2, False)]
    assert ballot_log.size(db, ballot.id) == 3


# Nothing per group before the close, on any surface -----------------------------------------------------------


@pytest.mark.parametrize("live", [False, True])
def test_nothing_per_group_is_published_before_the_close(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    browser: Browser,
    setting: dict[str, Any],
    clock: FrozenClock,
    live: bool,
) -> None:
    if live:
        setting["ballot"].results_live = True
        db.commit()
    answer_all(db, rt, anonymous_client, setting)
    ballot = setting["ballot"]
    results = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()
    assert results["status"] == ("shown" if live else "hidden")
    assert results["breakdown"]["status"] == "hidden" and results["breakdown"]["rows"] == []
    page = anonymous_client.get(f"/polls/{ballot.id}").text
    assert "data-breakdown-hidden" in page and "ballot-breakdown" not in page
    for fmt in ("csv", "json"):
        body = anonymous_client.get(f"/polls/{ballot.id}/results.{fmt}").text
        assert "Engineering" not in body and "Lyon" not in body
    leaves = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/log/leaves").json()["leaves"]
    assert all("group" not in b64url.decode(leaf["entry"]).decode().replace('"groups"', "") for leaf in leaves)
    clock.advance(timedelta(days=1))  # closed, and (batching off) final
    assert anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()["breakdown"]["status"] == "shown"


# After the close: the suppressed aggregate, the same on every surface -----------------------------------------


def test_after_the_close_every_surface_shows_the_same_suppressed_cells(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    setting: dict[str, Any],
    clock: FrozenClock,
    tmp_path: Any,
) -> None:
    answer_all(db, rt, anonymous_client, setting)
    ballot = setting["ballot"]
    clock.advance(timedelta(days=1))
    results = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()
    assert [option["count"] for option in results["options"]] == [14, 8]
    breakdown = results["breakdown"]
    assert breakdown["status"] == "shown" and breakdown["min_group_size"] == K
    # No (8) splits 6 and 2: the 2 is below k, the 6 its complement; Yes (9 and 5) is shown whole.
    assert [(row["name"], row["counts"]) for row in breakdown["rows"]] == [
        ("Engineering", [9, None]),
        ("Lyon", [5, None]),
        ("Not given", [0, 0]),
    ]
    exported = json.loads(anonymous_client.get(f"/polls/{ballot.id}/results.json").text)["breakdown"]
    assert [(row["name"], row["counts"]) for row in exported["rows"]] == [
        (row["name"], row["counts"]) for row in breakdown["rows"]
    ]
    csv = anonymous_client.get(f"/polls/{ballot.id}/results.csv").text
    assert "Engineering,department,9,suppressed" in csv and "Lyon,location,5,suppressed" in csv
    page = anonymous_client.get(f"/polls/{ballot.id}").text
    assert "ballot-breakdown" in page and "data-breakdown-hidden" not in page
    pdf = anonymous_client.get(f"/polls/{ballot.id}/results.pdf")
    assert pdf.status_code == 200
    text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf.content)).pages)
    text = " ".join(text.split())
    assert "By department or location" in text
    assert "Engineering Yes 9" in text and "Engineering No suppressed" in text and "Lyon No suppressed" in text
    # The log still verifies (groups are no part of it), and the breakdown agrees with the recount.
    assert run_verify(anonymous_client, ballot, tmp_path / "state.json").ok


def _claims_a_smaller_minimum(data: dict[str, Any]) -> None:
    """A server that names its own minimum beside the figures, 1, and publishes what k would suppress."""
    breakdown = data["results"]["breakdown"]
    breakdown["min_group_size"] = 1
    breakdown["rows"][0]["counts"][1] = 6
    breakdown["rows"][1]["counts"][1] = 2


@pytest.mark.one_database
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_claims_a_smaller_minimum, "the log commits the poll's minimum as 5"),
        # Two figures suppressed, but they add up to 3: a small group's answers, told together.
        (lambda data: data["results"]["breakdown"]["rows"][2]["counts"].__setitem__(1, 5), "add up to 3"),
        (lambda data: data["results"]["breakdown"]["rows"][1].__setitem__("group", 424242), "not the poll's groups"),
        (lambda data: data["results"]["breakdown"]["rows"][0]["counts"].__setitem__(0, 10), "do not add up"),
        (lambda data: data["results"]["breakdown"]["rows"][1]["counts"].__setitem__(1, 2), "under 5"),
        (lambda data: data["results"]["breakdown"]["rows"][0]["counts"].__setitem__(1, 6), "one figure alone"),
        (lambda data: data["ballot"].__setitem__("state", "open"), "while the poll is open"),
    ],
)
def test_verify_catches_a_breakdown_that_breaks_its_promises(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    setting: dict[str, Any],
    clock: FrozenClock,
    tmp_path: Any,
    change: Any,
    problem: str,
) -> None:
    """The cells rest on the server's word (no leaf names a group), but what an outsider can check is checked: the
    figures against the recount, and the suppression's promises."""
    answer_all(db, rt, anonymous_client, setting)
    clock.advance(timedelta(days=1))
    data = ballot_client.download(f"http://testserver/polls/{setting['ballot'].id}", fetch_with(anonymous_client))
    assert ballot_client.verify(data, tmp_path / "honest.json").ok
    change(data)
    report = ballot_client.verify(data, tmp_path / "changed.json")
    assert any(problem in line for line in report.problems), report.problems


# The answer form: which group, among how many, and leaving it out --------------------------------------------


@pytest.mark.one_database
def test_the_form_offers_the_members_own_groups_with_their_figure_and_none_by_default(
    db: Session, rt: Runtime, browser: Browser, setting: dict[str, Any]
) -> None:
    ballot, engineering = setting["ballot"], setting["engineering"]
    member = setting["people"]["engineering"][0]
    sign_in_as(browser, db, member)
    page = browser.get(f"/polls/{ballot.id}").text
    assert 'name="group" value="" checked' in page
    assert f'name="group" value="{engineering.id}"' in page
    assert "hides among 15 people" in page
    assert f'value="{setting["lyon"].id}"' not in page  # not one of this member's groups
    assert f"--group {engineering.id}" in page  # the command-line path, for a browser without JavaScript


# Differencing: the suppression of a table whose option totals are public -------------------------------------


def test_a_row_whose_only_published_figures_are_zeros_is_suppressed_whole() -> None:
    # Lyon answered No (5) and Later (1), never Yes: with its Yes published as 0, anyone would learn that Lyon's few
    # answers all avoided Yes. The row goes whole.
    table = suppress_table(
        [("Engineering", [6, 2, 0]), ("Lyon", [0, 5, 1]), ("Not given", [1, 0, 0])], min_group_size=K
    )
    for _label, cells in table:
        assert all(cell.count is None for cell in cells) or any(cell.count for cell in cells)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 9), min_size=2, max_size=3), min_size=2, max_size=3).filter(
        lambda rows: len({len(row) for row in rows}) == 1
    ),
    st.integers(2, 5),
)
def test_no_suppressed_cell_can_be_worked_out_from_the_cells_and_the_option_totals(
    rows: list[list[int]], k: int
) -> None:
    """The attacker knows every published cell and each option's total (the result); each suppressed cell must
    still take at least two values in some table that fits all of it."""
    table = suppress_table([(str(i), row) for i, row in enumerate(rows)], min_group_size=k)
    columns = len(rows[0])
    totals = [sum(row[column] for row in rows) for column in range(columns)]
    hidden = [(r, c) for r, (_label, cells) in enumerate(table) for c, cell in enumerate(cells) if cell.count is None]
    for r, c in hidden:
        assert table[r][1][c].count is None
        # Every way to fill column c's suppressed cells that meets its total (rows' totals are not published).
        column_hidden = [row for row, column in hidden if column == c]
        residual = totals[c] - sum(cells[c].count or 0 for _label, cells in table)
        values = {
            filling[column_hidden.index(r)]
            for filling in product(range(residual + 1), repeat=len(column_hidden))
            if sum(filling) == residual
        }
        # (A column nobody chose is all zeros, and its total says so: nothing the breakdown added.)
        assert len(values) >= 2 or totals[c] == 0, (rows, k, table)
    for _label, cells in table:  # no row says where its hidden answers are not
        assert (
            all(cell.count is None for cell in cells)
            or not any(cell.count is None for cell in cells)
            or any(cell.count for cell in cells)
        )


# The public leaves: each answer's whole set of choices, joined with the breakdown ---------------------------


def _assignments(total: int, parts: int) -> Any:
    """Every way to share `total` answers of one kind among `parts` groups (none among no groups)."""
    if parts == 0:
        return
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _assignments(total - first, parts - 1):
            yield (first, *rest)


def test_the_public_leaves_do_not_solve_a_multiple_choice_polls_suppressed_cells(
    db: Session, rt: Runtime, anonymous_client: TestClient, clock: FrozenClock
) -> None:
    """A poll that takes several choices publishes, in its leaves, how many answers chose each set of options; its
    breakdown publishes, per group, how many chose each option. Each group's figures are then a sum of those sets,
    which ties the columns together: here every answer includes "Lunch", so a group's "Late" figure is its "Lunch"
    figure less its "Early" one. The attacker tries every way to share the public sets among the groups that
    gives the published cells; every suppressed cell must still take two values or more."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    people = members_of(db, engineering, 8) + members_of(db, lyon, 7)
    ballot = ballot_helpers.pulse_ballot(
        db,
        rt,
        kind=BallotKind.multiple,
        question="Which canteen hours suit you?",
        options=["Early", "Lunch", "Late"],
        audience=BallotAudience.groups,
        groups=[engineering.id, lyon.id],
        days=1,
    )
    collected(db, ballot, people)
    offered = anonymous_client.get(f"/api/v1/ballots/{ballot.id}").json()["breakdown"]
    # Engineering: 5 Early and Lunch, 3 Lunch and Late; Lyon: 5 Early and Lunch, 2 Lunch and Late.
    plan = [(engineering.id, [0, 1])] * 5 + [(engineering.id, [1, 2])] * 3
    plan += [(lyon.id, [0, 1])] * 5 + [(lyon.id, [1, 2])] * 2
    for group_id, choice in plan:
        cred = ballot_helpers.credential(db, rt, ballot)
        db.commit()
        response = send(anonymous_client, ballot, cred, choice, group_id if offered else None)
        assert response.status_code == 202, response.text
    clock.advance(timedelta(days=1))

    results = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()
    published = [row["counts"] for row in (results["breakdown"] or {"rows": []})["rows"]]
    leaves = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/log/leaves").json()["leaves"]
    entries = [json.loads(b64url.decode(leaf["entry"])) for leaf in leaves]
    sets = Counter(tuple(entry["choice"]) for entry in entries if entry["kind"] == "answer")
    assert sets == {(0, 1): 10, (1, 2): 5}  # public to anyone once the result is shown
    possible: dict[tuple[int, int], set[int]] = {}
    kinds = list(sets.items())
    for shares in product(*(list(_assignments(count, len(published))) for _choice, count in kinds)):
        table = [[0, 0, 0] for _row in published]
        for (options, _count), share in zip(kinds, shares, strict=True):
            for row, answered in enumerate(share):
                for position in options:
                    table[row][position] += answered
        fits = all(
            shown is None or shown == table[row][column]
            for row, cells in enumerate(published)
            for column, shown in enumerate(cells)
        )
        if fits:
            for row, cells in enumerate(published):
                for column, shown in enumerate(cells):
                    if shown is None:
                        possible.setdefault((row, column), set()).add(table[row][column])
    solved = {cell: values for cell, values in possible.items() if len(values) < 2}
    assert not solved, (published, solved)


@pytest.mark.one_database
def test_the_new_poll_form_says_which_polls_are_broken_down(
    db: Session, browser: Browser, setting: dict[str, Any]
) -> None:
    sign_in_as(browser, db, ballot_helpers.pulse_author(db))
    page = " ".join(browser.get("/polls/new").text.split())
    assert "not for a poll that takes several choices" in page


@pytest.mark.one_database
def test_a_poll_taking_several_choices_has_no_breakdown_and_refuses_a_group(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any]
) -> None:
    engineering, lyon = setting["engineering"], setting["lyon"]
    several = ballot_helpers.pulse_ballot(
        db,
        rt,
        kind=BallotKind.multiple,
        audience=BallotAudience.groups,
        groups=[engineering.id, lyon.id],
        question="Which days suit you?",
    )
    one = ballot_helpers.pulse_ballot(
        db,
        rt,
        kind=BallotKind.multiple,
        max_choices=1,
        audience=BallotAudience.groups,
        groups=[engineering.id, lyon.id],
        question="Which day suits you best?",
    )
    collected(db, several, setting["people"]["engineering"])
    collected(db, one, setting["people"]["engineering"])
    assert anonymous_client.get(f"/api/v1/ballots/{several.id}").json()["breakdown"] is False
    assert anonymous_client.get(f"/api/v1/ballots/{one.id}").json()["breakdown"] is True
    cred = ballot_helpers.credential(db, rt, several)
    db.commit()
    refused = send(anonymous_client, several, cred, [0, 1], engineering.id)
    assert refused.status_code == 400, refused.text
    assert "more than one choice" in refused.json()["error"]["message"]
    assert send(anonymous_client, several, cred, [0, 1], None).status_code == 202
    cred = ballot_helpers.credential(db, rt, one)
    db.commit()
    assert send(anonymous_client, one, cred, [0], engineering.id).status_code == 202
    assert anonymous_client.get(f"/api/v1/ballots/{several.id}/results").json()["breakdown"] is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 12), min_size=2, max_size=3), min_size=3, max_size=4).filter(
        lambda rows: len({len(row) for row in rows}) == 1
    ),
    st.integers(2, 6),
)
def test_verify_finds_nothing_wrong_with_any_honest_breakdown(rows: list[list[int]], k: int) -> None:
    """The promises `verify` checks (with the minimum the log commits) are kept by every table the suppression
    publishes: no honest server is ever accused."""
    table = suppress_table([(str(i), row) for i, row in enumerate(rows)], min_group_size=k)
    groups = [{"id": i + 1, "kind": "department", "name": str(i)} for i in range(len(rows) - 1)]
    breakdown = {
        "status": "shown",
        "min_group_size": k,
        "rows": [
            {"group": i + 1 if i < len(groups) else None, "counts": [cell.count for cell in cells]}
            for i, (_label, cells) in enumerate(table)
        ],
    }
    described = {"groups": groups, "kind_of_ballot": "single", "max_choices": 1, "min_answers": k}
    report = ballot_client.BallotReport()
    totals = [sum(row[column] for row in rows) for column in range(len(rows[0]))]
    ballot_client._compare_breakdown(report, totals, breakdown, described)
    assert report.problems == [], (rows, k, table)


# Key rotation: the groups are personal data sealed like the rest ----------------------------------------------


def test_key_rotation_reseals_every_answers_group_under_the_new_key(
    db: Session,
    rt: Runtime,
    anonymous_client: TestClient,
    setting: dict[str, Any],
    sessions: Any,
    clock: FrozenClock,
) -> None:
    """An operator who rotates the personal-data key (the old one leaked, say) expects `undersigned keys rotate` to
    leave nothing under the old key: the groups were left behind, still opened by the leaked key, and lost for the
    breakdown once it is removed from the settings."""
    answer_all(db, rt, anonymous_client, setting)
    ballot = setting["ballot"]
    try:
        crypto.install(rt.keyring, crypto.generate_key("r9"))
        rotated = rotation.rotate(sessions=sessions, rt=rt)
        db.expire_all()
        sealed = [bytes(value) for value in db.scalars(select(BallotAnswer.sealed_group)) if value is not None]
        assert len(sealed) == 22
        assert {crypto.key_id_of(value) for value in sealed} == {"r9"}
        assert rotated.resealed.get("ballot_answers.sealed_group") == 22
        clock.advance(timedelta(days=1))
        breakdown = anonymous_client.get(f"/api/v1/ballots/{ballot.id}/results").json()["breakdown"]
        assert [row["counts"] for row in breakdown["rows"]] == [[9, None], [5, None], [0, 0]]
    finally:
        pii_keys = rt.settings.pii_keys.get_secret_value() if rt.settings.pii_keys else None
        crypto.install(rt.keyring, pii_keys)  # the test runtime's own key seals again


# The table read aloud ------------------------------------------------------------------------------------------


class _CellText(HTMLParser):
    """Each cell of the breakdown's table as a screen reader gets it: its text, less what is aria-hidden; and any
    aria-label put on an element without a role (ARIA 1.2 forbids naming a generic element: screen readers skip
    the name, axe-core's rule aria-prohibited-attr fails it)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.unnamed_labels: list[str] = []
        self._in_table = self._in_cell = False
        self._hidden_depth = 0
        self._stack: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and "ballot-breakdown" in (found.get("class") or ""):
            self._in_table = True
        if not self._in_table:
            return
        if tag == "td":
            self._in_cell = True
            self.cells.append("")
        if tag == "span":
            hidden = found.get("aria-hidden") == "true"
            self._stack.append(hidden)
            self._hidden_depth += hidden
            if "aria-label" in found and "role" not in found:
                self.unnamed_labels.append(found["aria-label"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        if tag == "td":
            self._in_cell = False
        if tag == "span" and self._in_table and self._stack:
            self._hidden_depth -= self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_table and self._in_cell and not self._hidden_depth:
            self.cells[-1] += data


@pytest.mark.one_database
def test_a_suppressed_cell_is_read_aloud_as_left_out(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any], clock: FrozenClock
) -> None:
    answer_all(db, rt, anonymous_client, setting)
    clock.advance(timedelta(days=1))
    parser = _CellText()
    parser.feed(anonymous_client.get(f"/polls/{setting['ballot'].id}").text)
    assert parser.unnamed_labels == []
    # Engineering Yes 9, No left out; Lyon Yes 5, No left out; Not given 0 and 0.
    assert [" ".join(cell.split()) for cell in parser.cells] == ["9", "left out", "5", "left out", "0", "0"]


@pytest.mark.one_database
def test_verify_catches_a_breakdown_shown_while_the_result_is_withheld(
    db: Session, rt: Runtime, anonymous_client: TestClient, setting: dict[str, Any], tmp_path: Any
) -> None:
    """The worst lie: a server that shows per-group figures while the poll is open, its result kept (a series of
    them tells each new answer's group). `verify` checked the breakdown only once the result showed."""
    answer_all(db, rt, anonymous_client, setting)
    data = ballot_client.download(f"http://testserver/polls/{setting['ballot'].id}", fetch_with(anonymous_client))
    assert data["results"]["status"] == "hidden" and ballot_client.verify(data, tmp_path / "honest.json").ok
    data["results"]["breakdown"] = {
        "status": "shown",
        "min_group_size": K,
        "rows": [
            {"group": setting["engineering"].id, "kind": "department", "name": "Engineering", "counts": [9, 6]},
            {"group": setting["lyon"].id, "kind": "location", "name": "Lyon", "counts": [5, None]},
            {"group": None, "kind": None, "name": "Not given", "counts": [0, None]},
        ],
    }
    report = ballot_client.verify(data, tmp_path / "changed.json")
    assert any("while its result is withheld" in line for line in report.problems), report.problems


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 14), min_size=2, max_size=4), min_size=2, max_size=8).filter(
        lambda rows: len({len(row) for row in rows}) == 1
    ),
    st.integers(2, 7),
)
def test_an_attacker_who_knows_which_suppressed_cells_cannot_be_zero_still_solves_none(
    rows: list[list[int]], k: int
) -> None:
    """A stronger attacker than the one above: they know the rules, so they know a suppressed cell is at least 1
    unless its row or its column is suppressed whole (only those rules ever suppress a 0). In each column, every
    way to fill its suppressed cells from their lower bounds up to the column's rest must leave each of them two
    values or more: the rest exceeds the sum of the lower bounds."""
    table = suppress_table([(str(i), row) for i, row in enumerate(rows)], min_group_size=k)
    published = [[cell.count for cell in cells] for _label, cells in table]
    width = len(rows[0])
    whole_rows = {r for r, cells in enumerate(published) if all(count is None for count in cells)}
    whole_columns = {c for c in range(width) if all(cells[c] is None for cells in published)}
    for column in range(width):
        total = sum(row[column] for row in rows)
        hidden = [r for r, cells in enumerate(published) if cells[column] is None]
        if not hidden or total == 0:
            continue
        rest = total - sum(cells[column] or 0 for cells in published)
        lowest = sum(0 if r in whole_rows or column in whole_columns else 1 for r in hidden)
        assert rest - lowest >= 1, (rows, k, published, column)
