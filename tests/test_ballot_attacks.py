"""The adversary against ballots (issue #25) and the petition page's shared copy (issue #24), as code.

Production-like: batching on (answers wait in the process's memory, the batch is run explicitly), k = 3. Each test is
an attack: an observer polling what anyone can read, an operator holding the database and every key, a lying server
checked by `undersigned verify`, bad input through the API, and readers of a petition's shared page.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.ballots import answers
from app.ballots import log as ballot_log
from app.ballots import service as ballots
from app.ballots.answers import BallotQueue
from app.clients import ballots as ballot_client
from app.core import b64url, blindrsa
from app.core.clock import FrozenClock
from app.core.errors import AppError
from app.core.runtime import Runtime
from app.models.accounts import Role
from app.models.anonymous import SignerKey
from app.models.ballots import (
    Ballot,
    BallotAnswer,
    BallotCheckpoint,
    BallotIssuance,
    BallotKind,
    BallotLeaf,
    BallotOption,
)
from app.models.petitions import Petition
from app.moderation import service as moderation
from app.petitions import issuing_keys
from app.reports import tally
from app.responses import schemas as response_schemas
from app.responses import service as responses
from app.signatures import service as signatures
from tests import factories
from tests.ballot_helpers import (  # noqa: F401 (fixtures: anonymous_client, batching_settings, queue)
    BATCH_SECONDS,
    K,
    accepted,
    anonymous_client,
    batching_settings,
    credential,
    petition_ballot,
    pulse_ballot,
    queue,
    send,
)
from tests.conftest import Browser, make_user, sign_in_as
from tests.test_ballots_verify import fetch_with, resign, rewrite_leaf

pytestmark = pytest.mark.one_database


def observe(client: TestClient, ballot: Ballot) -> dict[str, Any]:
    """Everything anyone can read about a ballot without signing in, with the validators a poller would send."""
    base = f"/api/v1/ballots/{ballot.id}"
    seen: dict[str, Any] = {}
    paths = [base, f"{base}/results", f"{base}/log/checkpoint", f"{base}/log/leaves", f"/polls/{ballot.id}", "/polls"]
    if ballot.petition_id is not None:  # the petition's page lists its polls, its JSON carries the tally's ETag
        paths += [f"/petitions/{ballot.petition_id}", f"/api/v1/petitions/{ballot.petition_id}"]
    for path in paths:
        response = client.get(path)
        seen[path] = (response.status_code, response.text, response.headers.get("etag"))
    return seen


def results(client: TestClient, ballot: Ballot) -> dict[str, Any]:
    return client.get(f"/api/v1/ballots/{ballot.id}/results").json()


# -- 2. timing: nothing moves at the moment of an answer ------------------------------------------------------


@pytest.mark.parametrize("attached", [False, True], ids=["pulse", "petition"])
def test_nothing_readable_moves_between_an_answer_and_its_batch(
    attached: bool,
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The attack: poll the ballot's API, results, log and page (and their ETags) just before and just after a
    colleague is seen answering; anything that moves dates the answer to them, finer than the batch. A petition's
    poll also moves the petition page's version (it lists its polls): at the batch only."""
    if attached:
        organizer = factories.worker(db)
        petition = factories.open_petition(db, rt, creator=organizer)
        ballot = petition_ballot(db, rt, petition, organizer, results_live=True)
    else:
        ballot = pulse_ballot(db, rt, results_live=True)
    creds = [credential(db, rt, ballot) for _ in range(4)]
    db.commit()
    before = observe(anonymous_client, ballot)
    for cred, choice in zip(creds[:3], ([0], [1], [2]), strict=True):
        accepted(anonymous_client, ballot, cred, choice)
        assert observe(anonymous_client, ballot) == before
    db.expire_all()
    assert db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot.id)).all() == []
    assert answers.write_batch(sessions=sessions, rt=rt) == 3
    after = observe(anonymous_client, ballot)
    assert after != before  # the batch, not the answer, is what an observer sees
    assert results(anonymous_client, ballot)["answers"] == 3


# -- 3. live results: differencing a small batch ----------------------------------------------------------


def test_live_results_never_move_by_fewer_than_k_answers_before_the_close(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The attack: with live results, read the figures before and after each batch. A group smaller than k let out
    by the maximum delay moves them by one answer: the difference IS that person's answer (and the log's new leaf
    says it outright), while the batch's hour and who was seen answering name them."""
    ballot = pulse_ballot(db, rt, results_live=True)
    creds = [credential(db, rt, ballot) for _ in range(6)]
    db.commit()
    for cred, choice in zip(creds[:3], ([0], [0], [1]), strict=True):
        accepted(anonymous_client, ballot, cred, choice)
    assert answers.write_batch(sessions=sessions, rt=rt) == 3
    first = observe(anonymous_client, ballot)
    assert results(anonymous_client, ballot)["status"] == "shown"

    accepted(anonymous_client, ballot, creds[3], [2])  # one person, alone in their batch
    for _ in range(4):  # well past the maximum delay of two hours
        clock.advance(timedelta(hours=1))
        answers.write_batch(sessions=sessions, rt=rt)
    assert observe(anonymous_client, ballot) == first, "a lone answer moved the live figures: its choice is read"

    accepted(anonymous_client, ballot, creds[4], [1])  # k answers together: the figures move by all three at once
    accepted(anonymous_client, ballot, creds[5], [0])
    assert answers.write_batch(sessions=sessions, rt=rt) == 3
    shown = results(anonymous_client, ballot)
    assert shown["answers"] == 6 and [option["count"] for option in shown["options"]] == [3, 2, 1]


def test_a_lone_change_on_a_live_ballot_waits_for_company_or_the_close(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """A changed answer alone in its batch shows who moved from what to what: held like a new one. At the close it
    goes out (it was accepted while open) and counts."""
    ballot = pulse_ballot(db, rt, results_live=True, days=1)
    creds = [credential(db, rt, ballot) for _ in range(3)]
    db.commit()
    for cred, choice in zip(creds, ([0], [1], [2]), strict=True):
        accepted(anonymous_client, ballot, cred, choice)
    assert answers.write_batch(sessions=sessions, rt=rt) == 3
    accepted(anonymous_client, ballot, creds[0], [2])
    for _ in range(4):  # a batch each hour, well past the maximum delay
        clock.advance(timedelta(hours=1))
        assert answers.write_batch(sessions=sessions, rt=rt) == 0
    assert [option["count"] for option in results(anonymous_client, ballot)["options"]] == [1, 1, 1]
    clock.advance(timedelta(hours=20))  # closed: the held change goes out with the last batch
    assert answers.write_batch(sessions=sessions, rt=rt) == 1
    clock.advance(timedelta(seconds=BATCH_SECONDS))
    assert [option["count"] for option in results(anonymous_client, ballot)["options"]] == [0, 1, 2]


# -- 3. hidden until close: no path shows a choice ----------------------------------------------------------


def _surfaces(client: TestClient, ballot: Ballot, petition: Petition) -> dict[str, str]:
    """Every path that could carry a ballot's figures, as a signed-out reader or a member reads it."""
    base = f"/api/v1/ballots/{ballot.id}"
    paths = [
        base,
        f"{base}/results",
        "/api/v1/ballots?limit=200",
        f"/polls/{ballot.id}",
        f"/polls/{ballot.id}/results.json",
        f"/polls/{ballot.id}/results.csv",
        "/polls",
        f"/petitions/{petition.id}",
        f"/api/v1/petitions/{petition.id}",
        f"/api/v1/petitions/{petition.id}/timeline",
        "/scoreboard",
    ]
    seen = {path: client.get(path).text for path in paths}
    leaves = client.get(f"{base}/log/leaves").json()
    seen["leaves"] = json.dumps(leaves["leaves"])  # the size moves with every batch, the entries must not
    checkpoint = client.get(f"{base}/log/checkpoint").json()["checkpoint"]
    seen["counters"] = json.dumps(ballot_log.counters(checkpoint))
    return seen


def test_nothing_shows_a_kept_results_choices_before_the_close(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    browser: Browser,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The attack: read every surface (API, page, downloads, log, petition page, timeline, scoreboard, delivery
    data) while every answer says Yes, then again once every one of them changed to No. Before the close they must
    be the same: anything that differs shows the choices the ballot keeps."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    signatures.sign(
        db=db, rt=rt, petition_id=petition.id, user=factories.worker(db), visibility="public", notify_updates=False
    )
    db.execute(update(Petition).where(Petition.id == petition.id).values(response_due_at=rt.clock.now()))
    db.commit()
    response = responses.post_response(
        db=db,
        rt=rt,
        petition=petition,
        responder=factories.worker(db, roles=(Role.responder,)),
        form=response_schemas.ResponseCreate(summary="We will see.", details="Later.", status="under_review"),
    )
    ballot = ballots.open_ratification(
        db, rt, actor=organizer, petition=petition, response=response, closes_at=rt.clock.now() + timedelta(days=2)
    )
    creds = [credential(db, rt, ballot) for _ in range(4)]
    db.commit()
    sign_in_as(browser, db, factories.worker(db))
    for cred in creds:
        accepted(anonymous_client, ballot, cred, [0])
    assert answers.write_batch(sessions=sessions, rt=rt) == 4
    yes = (_surfaces(anonymous_client, ballot, petition), _surfaces(browser.client, ballot, petition))
    yes_delivery = tally.build(db=db, rt=rt, petition=petition).ratifications
    clock.advance(timedelta(hours=1))
    for cred in creds:
        accepted(anonymous_client, ballot, cred, [2])
    assert answers.write_batch(sessions=sessions, rt=rt) == 4
    db.expire_all()
    no = (_surfaces(anonymous_client, ballot, petition), _surfaces(browser.client, ballot, petition))
    for reader, before, after in zip(("signed out", "member"), yes, no, strict=True):
        moved = [path for path in before if before[path] != after[path]]
        assert moved == [], f"{reader}: {moved} differ between every answer Yes and every answer No"
    assert yes_delivery == tally.build(db=db, rt=rt, petition=petition).ratifications == ()
    # Once closed (and past its last batch) the result shows: the comparison above could have failed.
    clock.advance(timedelta(days=2, seconds=BATCH_SECONDS))
    assert results(anonymous_client, ballot)["options"][2]["count"] == 4


# -- 4. a lying server, caught (or not) by `undersigned verify` ---------------------------------------------


def _verify(client: TestClient, ballot: Ballot, state: Path) -> ballot_client.BallotReport:
    data = ballot_client.download(f"http://testserver/polls/{ballot.id}", fetch_with(client))
    return ballot_client.verify(data, state)


@pytest.fixture
def answered(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> Ballot:
    """An open single-choice ballot with five answers counted (3 Yes, 2 No), its result kept until the close."""
    ballot = pulse_ballot(db, rt, options=["Yes", "No"], days=1)
    creds = [credential(db, rt, ballot) for _ in range(5)]
    db.commit()
    for cred, choice in zip(creds, ([0], [0], [0], [1], [1]), strict=True):
        accepted(anonymous_client, ballot, cred, choice)
    assert answers.write_batch(sessions=sessions, rt=rt) == 5
    return ballot


def test_a_server_that_swaps_the_options_labels_is_caught(
    db: Session, rt: Runtime, clock: FrozenClock, anonymous_client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    """The attack: the log commits "Yes" as option 0 and counts 3 for it; the operator swaps the labels the API, the
    page and the result show, so the page announces "No: 3, Yes: 2" over a log that verifies. The counts match by
    position, so only comparing the labels with the log's entry catches it."""
    clock.advance(timedelta(days=1, seconds=BATCH_SECONDS))
    assert _verify(anonymous_client, answered, tmp_path / "honest.json").ok
    for position, label in ((0, "No"), (1, "Yes")):
        db.execute(
            update(BallotOption)
            .where(BallotOption.ballot_id == answered.id, BallotOption.position == position)
            .values(label=label)
        )
    db.commit()
    shown = anonymous_client.get(f"/api/v1/ballots/{answered.id}").json()["options"]
    assert [option["label"] for option in shown] == ["No", "Yes"]  # what the page and the wallet show answerers
    report = _verify(anonymous_client, answered, tmp_path / "state.json")
    assert not report.ok
    assert any("option" in problem for problem in report.problems), report.problems


def test_a_choice_rewritten_while_the_result_was_kept_is_caught_by_a_monitor(
    db: Session, rt: Runtime, clock: FrozenClock, anonymous_client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    """The attack: a monitor runs `undersigned verify` on the open ballot (answers not yet published, only the signed
    checkpoint); the operator then rewrites a counted Yes into a No, in the leaf and the answers' table, and signs
    the log again (they hold the log key). At the close the rewritten log verifies, unless the monitor remembered
    the root the checkpoint it checked earlier committed to."""
    state = tmp_path / "state.json"
    early = _verify(anonymous_client, answered, state)
    assert early.ok and early.withheld
    first_yes = db.scalars(
        select(BallotAnswer).where(BallotAnswer.ballot_id == answered.id, BallotAnswer.choice == "[0]")
    ).first()
    assert first_yes is not None
    first_yes.choice = "[1]"
    db.commit()
    rewrite_leaf(db, answered, first_yes.log_index, choice=[1])
    db.execute(update(BallotCheckpoint).where(BallotCheckpoint.ballot_id == answered.id).values(note=""))
    resign(db, rt, answered)
    clock.advance(timedelta(days=1, seconds=BATCH_SECONDS))
    report = _verify(anonymous_client, answered, state)
    assert not report.ok, "the rewritten log passed: the monitor's earlier checkpoint was forgotten"
    assert any("rewritten" in problem for problem in report.problems), report.problems


def test_a_result_withheld_as_not_enough_over_enough_committed_answers_is_caught(
    db: Session, rt: Runtime, clock: FrozenClock, anonymous_client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    """The attack: an operator who dislikes the result raises the ballot's minimum in its row after the close, so
    the server says "not enough answers yet" and withholds the answers' leaves, while its own checkpoint commits
    five answers counted and entry 0 a minimum of three. Verify said "OK so far"."""
    db.execute(update(Ballot).where(Ballot.id == answered.id).values(min_answers=100))
    db.commit()
    clock.advance(timedelta(days=1, seconds=BATCH_SECONDS))
    assert results(anonymous_client, answered)["status"] == "not_enough"
    report = _verify(anonymous_client, answered, tmp_path / "state.json")
    assert not report.ok, report.summary()
    assert any("minimum" in problem for problem in report.problems), report.problems


def test_an_answer_under_a_key_given_to_one_group_is_caught(
    db: Session, rt: Runtime, clock: FrozenClock, anonymous_client: TestClient, answered: Ballot, tmp_path: Path
) -> None:
    """The attack: the server hands one worker a key of its own (to recognise their answer) and writes that answer
    into the log. Entry 0 commits the ballot's one key: the leaf does not verify under it."""
    other = pulse_ballot(db, rt)
    stray = credential(db, rt, other)
    db.commit()
    db.refresh(answered)
    bad = ballot_log.answer_entry(message=stray[0], signature=stray[1], revision=1, choice=[1])
    with db.begin_nested():
        ballot_log.append(db, answered.id, [bad])
    answered.answers_counted += 1
    answered.credentials_issued += 1
    db.commit()
    resign(db, rt, answered)
    clock.advance(timedelta(days=1, seconds=BATCH_SECONDS))
    report = _verify(anonymous_client, answered, tmp_path / "state.json")
    assert any("not issued by the ballot's key" in problem for problem in report.problems), report.problems


# -- 5. bad input through the API: a clear error, the right status, nothing counted -------------------------


def test_bad_answers_are_refused_and_nothing_is_queued_or_counted(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    ranked = pulse_ballot(db, rt, kind=BallotKind.ranked, options=["A", "B", "C"], days=1)
    other = pulse_ballot(db, rt)
    cred = credential(db, rt, ranked)
    foreign = credential(db, rt, other)
    db.commit()
    good = {"message": b64url.encode(cred[0]), "signature": b64url.encode(cred[1])}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "choice": [0, 0]}, 400, "Rank each option once."),
        ({**good, "choice": [3]}, 400, "That option does not exist on this poll."),
        ({**good, "choice": [-1]}, 400, "That option does not exist on this poll."),
        ({**good, "choice": [2**40]}, 400, "That option does not exist on this poll."),
        ({**good, "choice": []}, 400, "Choose an option before sending."),
        ({**good, "choice": list(range(101))}, 422, ""),
        ({**good, "choice": ["first"]}, 422, ""),
        ({**good, "choice": [0], "signature": b64url.encode(foreign[1])}, 400, "not valid for this poll"),
        ({"message": b64url.encode(foreign[0]), "signature": b64url.encode(foreign[1]), "choice": [0]}, 400, ""),
        ({**good, "message": "not base64!", "choice": [0]}, 422, ""),
        ({**good, "message": b64url.encode(b"short"), "choice": [0]}, 400, "bytes"),
        ({"choice": [0]}, 422, ""),
    ]
    for body, status, words in cases:
        response = anonymous_client.post(f"/api/v1/ballots/{ranked.id}/answers", json=body)
        assert response.status_code == status, (body, response.text)
        message = response.json()["error"]["message"]
        assert words in json.dumps(response.json()) and message, (body, response.text)
    assert anonymous_client.post("/api/v1/ballots/0/answers", json={**good, "choice": [0]}).status_code == 422
    # The log's paging at its limits, and offsets past everything: answered, never a 500.
    edge = anonymous_client.get(f"/api/v1/ballots/{ranked.id}/log/leaves?start=2147483647")
    assert edge.status_code == 200 and edge.json()["leaves"] == []
    assert anonymous_client.get(f"/api/v1/ballots/{ranked.id}/log/leaves?start=5&end=1").status_code in (200, 422)
    assert anonymous_client.get("/api/v1/ballots?offset=2147483647").status_code in (200, 422)
    assert anonymous_client.get(f"/api/v1/ballots/{ranked.id}/log/leaves?start=-1").status_code == 422
    assert anonymous_client.post("/api/v1/ballots/99999/answers", json={**good, "choice": [0]}).status_code == 404
    assert len(queue) == 0
    accepted(anonymous_client, ranked, cred, [0, 1])
    assert answers.write_batch(sessions=sessions, rt=rt) == 0  # alone: held
    clock.advance(timedelta(days=1))  # closed
    late = send(anonymous_client, ranked.id, foreign, [0])
    assert late.status_code == 409 and "has closed" in late.json()["error"]["message"]
    assert answers.write_batch(sessions=sessions, rt=rt) == 1  # the one accepted while open counts
    again = send(anonymous_client, ranked.id, cred, [0, 1])
    assert again.status_code == 409
    db.expire_all()
    assert db.get_one(Ballot, ranked.id).answers_counted == 1
    assert len(db.scalars(select(BallotLeaf).where(BallotLeaf.ballot_id == ranked.id)).all()) == 2


def test_bad_ballots_are_refused_through_the_api(db: Session, rt: Runtime, browser: Browser) -> None:
    sign_in_as(browser, db, factories.worker(db, roles=(Role.responder,)))
    closes = (rt.clock.now() + timedelta(days=2)).isoformat()
    base = {"kind": "single", "question": "Which day?", "closes_at": closes}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**base, "options": []}, 422, "options"),
        ({**base, "options": [f"Option {n}" for n in range(100)]}, 422, "options"),
        ({**base, "options": ["Monday", "monday"]}, 422, "options"),
        ({**base, "options": ["Monday", "Tuesday"], "closes_at": "2020-01-01T00:00:00Z"}, 422, "closes_at"),
        ({**base, "options": ["Monday", "Tuesday"], "closes_at": "9999-12-31T23:00:00Z"}, 422, "closes_at"),
        ({**base, "options": ["Monday", "Tuesday"], "min_answers": 1}, 422, "min_answers"),
        ({**base, "options": ["Monday", "Tuesday"], "audience": "signers"}, 422, "audience"),
        ({**base, "kind": "ranked", "options": ["A", "B"], "max_choices": 9}, 422, "max_choices"),
    ]
    for body, status, field in cases:
        response = browser.api("POST", "/api/v1/ballots", body)
        assert response.status_code == status, (body, response.text)
        assert field in response.text and response.json()["error"]["message"], response.text
    assert db.scalars(select(Ballot)).all() == []


def test_a_non_member_collects_no_ballot_credential(db: Session, rt: Runtime, new_browser: Any) -> None:
    """The attack: an unverified account, or a member for a signers' ballot of a petition they never signed, asks
    the wallet for a ballot credential."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    signers_ballot = petition_ballot(db, rt, petition, organizer)
    members_ballot = pulse_ballot(db, rt)
    stranger = sign_in_as(new_browser(), db, factories.worker(db))
    wallet = stranger.api("GET", "/api/v1/wallet?purposes=sign,discuss,ballot,signer").json()
    listed = {item["ballot_id"] for item in wallet["due"] if item["purpose"] == "ballot"}
    assert members_ballot.id in listed and signers_ballot.id not in listed

    def blinded_for(spki: bytes | str) -> str:
        public = blindrsa.PublicKey.from_spki(b64url.decode(spki) if isinstance(spki, str) else spki)
        return b64url.encode(blindrsa.blind(public, blindrsa.prepare(secrets.token_bytes(32))).blinded_msg)

    # Everything due, as the rule asks, and the signers' poll on top.
    due = [
        {
            "purpose": item["purpose"],
            "ballot_id": item["ballot_id"],
            "petition_id": item["petition_id"],
            "blinded_message": blinded_for(item["spki"]),
        }
        for item in wallet["due"]
    ]
    extra = {
        "purpose": "ballot",
        "ballot_id": signers_ballot.id,
        "petition_id": petition.id,
        "blinded_message": blinded_for(signers_ballot.spki),
    }
    asked = stranger.api("POST", "/api/v1/wallet/tokens", {"tokens": [*due, extra]})
    assert asked.status_code in (400, 403, 409, 422), asked.text
    assert asked.status_code == 409 and f"ballot {signers_ballot.id} " not in asked.json()["error"]["message"]
    members_request = blinded_for(members_ballot.spki)
    # An account whose address is not verified asks for a members' poll credential.
    unverified = sign_in_as(new_browser(), db, make_user(db, email="not-yet@example.com", verified=False))
    wanted = unverified.api(
        "POST",
        "/api/v1/wallet/tokens",
        {"tokens": [{"purpose": "ballot", "ballot_id": members_ballot.id, "blinded_message": members_request}]},
    )
    assert wanted.status_code in (400, 403, 409, 422), wanted.text
    assert wanted.json()["error"]["message"]
    db.expire_all()
    assert db.get_one(Ballot, signers_ballot.id).credentials_issued == 0
    assert db.get_one(Ballot, members_ballot.id).credentials_issued == 0
    assert db.scalars(select(BallotIssuance)).all() == []


# -- 6. the petition page's shared copy ----------------------------------------------------------------------


def test_a_poll_of_a_hidden_petition_disappears_at_once_and_no_reader_gets_anothers_parts(
    db: Session, rt: Runtime, browser: Browser, new_browser: Any, anonymous_client: TestClient
) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = petition_ballot(db, rt, petition, organizer, question="Which demand goes first?")
    member = sign_in_as(browser, db, factories.worker(db))
    other = sign_in_as(new_browser(), db, factories.worker(db))
    organizing = sign_in_as(new_browser(), db, organizer)
    pages = {
        name: reader.get(f"/petitions/{petition.id}").text
        for name, reader in (("member", member), ("other", other), ("organizer", organizing))
    }
    pages["public"] = anonymous_client.get(f"/petitions/{petition.id}").text
    assert all("Which demand goes first?" in page for page in pages.values())
    tokens = {name: set(re.findall(r'name="csrf_token" value="([^"]+)"', page)) for name, page in pages.items()}
    assert tokens["member"] and tokens["other"] and not tokens["member"] & tokens["other"]
    assert tokens["member"] == {member.csrf()} and tokens["other"] == {other.csrf()}
    assert "Ask the signers a question" in pages["organizer"]
    assert all("Ask the signers a question" not in pages[name] for name in ("member", "other", "public"))

    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    for reader in (member.client, other.client, anonymous_client):
        assert reader.get(f"/petitions/{petition.id}").status_code == 404
        assert reader.get(f"/polls/{ballot.id}").status_code == 404
        assert reader.get(f"/polls/{ballot.id}/results.json").status_code == 404
        assert reader.get(f"/api/v1/ballots/{ballot.id}").status_code == 404
        assert "Which demand goes first?" not in reader.get("/polls").text
        assert "Which demand goes first?" not in reader.get("/api/v1/ballots").text
        assert "Which demand goes first?" not in reader.get("/").text


# -- 1/2. the exchange dates a signer's first answer -------------------------------------------------------------


def _signer_credential(db: Session, rt: Runtime, petition: Petition) -> tuple[bytes, bytes]:
    """A signer credential for the petition, finalized as a wallet does (issued however the signer signed)."""
    key = db.get_one(SignerKey, petition.id)
    assert key.sealed_private is not None
    pem = rt.sealer.open(key.sealed_private, context=issuing_keys.signer_context(petition.id)).encode()
    signer = blindrsa.Signer(blindrsa.PrivateKey.from_pem(pem, sealed_by_us=True), pem=pem)
    public = blindrsa.PublicKey.from_spki(key.spki)
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(public, message)
    return message, blindrsa.finalize(public, message, signer.blind_sign(blinded.blinded_msg), blinded.inv)


def test_an_exchange_moves_nothing_readable_before_the_batch(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The attack: a signers' poll's page and API show 'hidden among N' (credentials_issued). The wallet exchanges
    its signer credential at the signer's first answer, a click after their signed-in page loaded; the counter moves
    at that second, so polling it dates each signer's first answer finer than the batch, and the signed-in
    requests of that moment (the wallet's bundle sync, the page itself) say whose, and so that they signed: an
    anonymous signer's secret. Answers are held to the batch; the exchange's public effect should be too."""
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = petition_ballot(db, rt, petition, organizer)
    signer = _signer_credential(db, rt, petition)
    db.commit()
    before = observe(anonymous_client, ballot)
    public = blindrsa.PublicKey.from_spki(ballot.spki)
    request = blindrsa.blind(public, blindrsa.prepare(secrets.token_bytes(32)))
    body = {
        "message": b64url.encode(signer[0]),
        "signature": b64url.encode(signer[1]),
        "blinded": b64url.encode(request.blinded_msg),
    }
    # With batching on, the exchange waits for the batch (202): nothing is written or handed out at the click.
    assert anonymous_client.post(f"/api/v1/ballots/{ballot.id}/exchange", json=body).status_code == 202
    moved = [path for path, seen in observe(anonymous_client, ballot).items() if seen != before[path]]
    assert moved == [], f"{moved} moved at the moment of an exchange"
    # Nor at the jobs round, which follows within seconds (tests/test_linkage.py dated exchanges by it): counted all
    # the same, with the poll's batch (here, alone, the close's last one).
    assert ballots.refresh_checkpoints(db=db, rt=rt) == 0
    clock.advance(timedelta(days=8))  # past its closing (a week)
    answers.write_batch(sessions=sessions, rt=rt)
    db.commit()
    assert anonymous_client.get(f"/api/v1/ballots/{ballot.id}").json()["credentials_issued"] == 1


def test_answers_waiting_for_their_batch_are_not_counted_under_edited_options(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The attack (or a careless organizer): two colleagues answer "Keep the night shift" (option 0); their answers
    wait for the batch. Before it, the author edits the poll, which counts no answer yet, and swaps the options. The
    batch then counts both answers for "Drop the night shift", and the log, whose edit entry precedes the answers,
    verifies. Texts must freeze once an answer is accepted; across server processes the only moment every process
    knows is the opening."""
    author = factories.worker(db, roles=(Role.responder,))
    ballot = pulse_ballot(db, rt, author=author, options=["Keep the night shift", "Drop the night shift"])
    creds = [credential(db, rt, ballot) for _ in range(2)]
    db.commit()
    for cred in creds:
        accepted(anonymous_client, ballot, cred, [0])
    swapped = {
        "question": ballot.question,
        "options": ["Drop the night shift", "Keep the night shift"],
        "max_choices": None,
        "opens_at": None,
        "closes_at": ballot.closes_at,
        "results_live": False,
        "min_answers": None,
        "note": None,
    }
    try:
        ballots.edit(db, rt, actor=author, ballot=ballot, **swapped)  # type: ignore[arg-type]
        db.commit()
    except AppError:  # refused: what the test asks for
        db.rollback()
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        answers.write_batch(sessions=sessions, rt=rt)
    db.expire_all()
    counted = [json.loads(row.choice) for row in db.scalars(select(BallotAnswer))]
    labels = ballots.labels(db=db, ballot=db.get_one(Ballot, ballot.id))
    assert [labels[choice[0]] for choice in counted] == ["Keep the night shift"] * 2


def test_a_polls_csv_runs_no_formula_in_a_spreadsheet_that_splits_on_semicolons(
    db: Session,
    rt: Runtime,
    clock: FrozenClock,
    anonymous_client: TestClient,
    queue: BallotQueue,
    sessions: sessionmaker[Session],
) -> None:
    """The attack: a poll's author writes a question and an option that, opened in a spreadsheet splitting cells on
    semicolons (the default in many locales), hold a formula of their own: leadership downloads the result and runs
    it. The petition exports make every such start inert (app/reports/exports.py's `inert`); the poll's CSV must
    too."""
    trap = "=2+5*A1"  # unquoted by the CSV writer (no comma, no quote), so the spreadsheet's split is what counts
    ballot = pulse_ballot(db, rt, question=f"Which day?;{trap}", options=[f"Monday; {trap}", "Tuesday"], days=1)
    creds = [credential(db, rt, ballot) for _ in range(K)]
    db.commit()
    for cred in creds:
        accepted(anonymous_client, ballot, cred, [0])
    assert answers.write_batch(sessions=sessions, rt=rt) == K
    clock.advance(timedelta(days=1, seconds=BATCH_SECONDS))
    text = anonymous_client.get(f"/polls/{ballot.id}/results.csv").text
    assert "Monday" in text and "Which day?" in text
    assert not re.search(r"(?:^|[,;\t|\r\n])[ \u00a0]*[=+\-@]", text), text
