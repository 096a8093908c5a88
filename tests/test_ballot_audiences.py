"""Polls put to the members of chosen departments or locations (issue #25): the creator picks groups from the
organization's lists (page and API, one validation); entry 0 of the poll's log commits them; only members who gave
one of them on their account are due the poll's credential, others are refused in plain words; the poll page says
who may answer, and its anonymity figure counts only the credentials issued to that audience.

The adversarial tests play a member outside the audience who tries to collect or spend a credential anyway, and a
member who moves between groups to collect twice; and an organizer who aims a poll at a group too small to hide
anyone."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.anonymous import wallet as wallet_service
from app.ballots import answers, audiences
from app.ballots import service as ballots
from app.clients import ballots as ballot_client
from app.core.b64url import encode as b64e
from app.core.clock import FrozenClock
from app.core.errors import Forbidden, InvalidInput
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.anonymous import SignerKey
from app.models.ballots import (
    Ballot,
    BallotAudience,
    BallotExchange,
    BallotGroup,
    BallotIssuance,
    BallotKind,
    BallotLeaf,
    MemberGroup,
)
from app.models.signatures import GroupKind, SignerGroup
from app.signatures import groups as signer_groups
from tests import ballot_helpers, factories
from tests.conftest import Browser, sign_in_as
from tests.test_ballot_credentials import ALL, Wallet

NewBrowser = Callable[[], Browser]


@pytest.fixture
def bare(app) -> TestClient:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        return client


def group(db: Session, rt: Runtime, kind: GroupKind, name: str) -> SignerGroup:
    made = signer_groups.add(db=db, rt=rt, kind=kind, name=name)
    db.flush()
    return made


def members_of(db: Session, chosen: SignerGroup, count: int) -> list[User]:
    """`count` confirmed members who gave `chosen` on their account."""
    people = []
    for _ in range(count):
        person = factories.worker(db)
        department = str(chosen.id) if chosen.kind is GroupKind.department else None
        location = str(chosen.id) if chosen.kind is GroupKind.location else None
        audiences.set_member_groups(db=db, user=person, department=department, location=location)
        people.append(person)
    db.commit()
    return people


def groups_ballot(db: Session, rt: Runtime, chosen: list[SignerGroup], **changes: Any) -> Ballot:
    return ballot_helpers.pulse_ballot(
        db, rt, audience=BallotAudience.groups, groups=[item.id for item in chosen], **changes
    )


def ballot_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Ballot)) or 0


# Creating: one validation ----------------------------------------------------------------------------------


def test_a_poll_put_to_departments_and_locations_commits_them_in_entry_0(db: Session, rt: Runtime) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, engineering, 5)
    members_of(db, lyon, 5)  # each group reaches k on its own (audiences.check_groups)
    ballot = groups_ballot(db, rt, [lyon, engineering])
    assert ballot.audience is BallotAudience.groups
    assert [item.name for item in audiences.audience_groups(db=db, ballot=ballot)] == ["Engineering", "Lyon"]
    entry = json.loads(db.get_one(BallotLeaf, (ballot.id, 0)).entry)
    assert entry["audience"] == "groups"
    assert entry["groups"] == [
        {"id": engineering.id, "kind": "department", "name": "Engineering"},
        {"id": lyon.id, "kind": "location", "name": "Lyon"},
    ]
    # The other audiences' entries are as they were: no "groups" key.
    members = ballot_helpers.pulse_ballot(db, rt)
    assert "groups" not in json.loads(db.get_one(BallotLeaf, (members.id, 0)).entry)


@pytest.mark.parametrize(
    ("audience", "pick", "message"),
    [
        (BallotAudience.groups, "none", "Choose at least one department or location."),
        (BallotAudience.groups, "unknown", "Choose departments and locations from the organization's lists."),
        (BallotAudience.groups, "inactive", "Choose departments and locations from the organization's lists."),
        (BallotAudience.members, "engineering", "Departments and locations are for a poll put to them"),
        (
            BallotAudience.groups,
            "small",
            "Fewer than 5 members have given at least one of these departments or locations",
        ),
    ],
)
def test_bad_groups_are_refused_with_every_other_problem_and_nothing_is_written(
    db: Session, rt: Runtime, audience: BallotAudience, pick: str, message: str
) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    members_of(db, engineering, 5)
    small = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, small, 4)  # below k = 5: a poll for it alone could never show a result
    retired = group(db, rt, GroupKind.department, "Typing pool")
    members_of(db, retired, 6)
    signer_groups.toggle(db=db, rt=rt, kind=GroupKind.department, group_id=retired.id)
    db.commit()
    chosen = {
        "none": [],
        "unknown": [engineering.id, 999_999],
        "inactive": [retired.id],
        "engineering": [engineering.id],
        "small": [small.id],
    }[pick]
    before = ballot_count(db)
    with pytest.raises(InvalidInput) as refused:
        ballots.create(
            db,
            rt,
            actor=ballot_helpers.pulse_author(db),
            petition=None,
            kind=BallotKind.single,
            question="",  # a second problem, reported in the same round
            options=["Yes", "No"],
            max_choices=None,
            audience=audience,
            opens_at=None,
            closes_at=rt.clock.now() + timedelta(days=3),
            groups=chosen,
        )
    assert str(refused.value.fields["groups"]).startswith(message)
    assert "question" in refused.value.fields
    db.rollback()
    assert ballot_count(db) == before
    assert db.scalar(select(func.count()).select_from(BallotGroup)) == 0


def test_the_audience_counts_confirmed_members_once_whichever_groups_they_gave(db: Session, rt: Runtime) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    both = members_of(db, engineering, 3)
    for person in both:  # in Engineering and in Lyon: counted once
        audiences.set_member_groups(db=db, user=person, department=str(engineering.id), location=str(lyon.id))
    unconfirmed = factories.worker(db)
    unconfirmed.email_verified_at = None
    db.add(MemberGroup(account_id=unconfirmed.id, kind=GroupKind.location, group_id=lyon.id))
    db.commit()
    assert audiences.audience_size(db=db, group_ids=[engineering.id, lyon.id]) == 3
    with pytest.raises(InvalidInput, match="correct"):
        groups_ballot(db, rt, [engineering, lyon])  # 3 < k
    members_of(db, lyon, 2)
    assert audiences.audience_size(db=db, group_ids=[engineering.id, lyon.id]) == 5
    with pytest.raises(InvalidInput, match="correct"):
        groups_ballot(db, rt, [engineering, lyon])  # 5 together, but Engineering alone 3 < k
    members_of(db, engineering, 2)
    assert audiences.group_sizes(db=db, group_ids=[engineering.id, lyon.id]) == {engineering.id: 5, lyon.id: 5}
    assert groups_ballot(db, rt, [engineering, lyon]).audience is BallotAudience.groups


def test_the_api_takes_groups_and_reads_them_back(browser: Browser, db: Session, rt: Runtime) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    members_of(db, engineering, 5)
    author = ballot_helpers.pulse_author(db)
    sign_in_as(browser, db, author)
    body = {
        "kind": "single",
        "question": "Should the on-call rota change?",
        "options": ["Yes", "No"],
        "audience": "groups",
        "groups": [engineering.id],
        "closes_at": (rt.clock.now() + timedelta(days=3)).isoformat(),
    }
    made = browser.api("POST", "/api/v1/ballots", body)
    assert made.status_code == 201, made.text
    assert made.json()["groups"] == [{"id": engineering.id, "kind": "department", "name": "Engineering"}]
    read = browser.get(f"/api/v1/ballots/{made.json()['id']}").json()
    assert read["audience"] == "groups" and read["groups"][0]["name"] == "Engineering"
    before = ballot_count(db)
    for groups, field_message in (([], "at least one"), ([424242], "lists")):
        refused = browser.api("POST", "/api/v1/ballots", {**body, "groups": groups})
        assert refused.status_code == 422, refused.text
        assert field_message in refused.json()["error"]["fields"]["groups"]
    assert ballot_count(db) == before


def test_the_creation_form_offers_the_lists_and_shows_errors_by_the_field(
    browser: Browser, db: Session, rt: Runtime
) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, engineering, 5)
    sign_in_as(browser, db, ballot_helpers.pulse_author(db))
    page = browser.get("/polls/new")
    assert page.status_code == 200
    assert f'name="group-{engineering.id}"' in page.text and f'name="group-{lyon.id}"' in page.text
    assert 'value="groups"' in page.text and 'value="signers"' not in page.text  # no signers without a petition
    fields = {
        "question": "Should the on-call rota change?",
        "kind": "single",
        "options": "Yes\nNo",
        "audience": "groups",
        "closes_at": (rt.clock.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "min_answers": "5",
    }
    before = ballot_count(db)
    refused = browser.post("/polls/new", {**fields, f"group-{lyon.id}": "1"})
    assert refused.status_code == 422
    assert "Fewer than 5 members have given at least one of these departments or locations" in refused.text
    assert 'id="groups-error"' in refused.text
    assert f'name="group-{lyon.id}" value="1" checked' in refused.text  # the choice is kept
    assert browser.post("/polls/new", {**fields, "group-x1": "1"}).status_code == 422
    assert ballot_count(db) == before
    made = browser.post("/polls/new", {**fields, f"group-{engineering.id}": "1"})
    assert made.status_code == 303, made.text
    shown = browser.get(made.headers["location"])
    assert "Members of Engineering, as they gave their department or location on their account" in shown.text


# Who is due the credential ---------------------------------------------------------------------------------


def test_only_members_of_the_chosen_groups_are_due_the_credential(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    sales = group(db, rt, GroupKind.department, "Sales")
    inside = members_of(db, engineering, 5)
    outside = members_of(db, sales, 1)[0]
    nowhere = factories.worker(db)
    ballot = groups_ballot(db, rt, [engineering])
    everyone = ballot_helpers.pulse_ballot(db, rt, question="Should Fridays be remote?")
    for person, due in ((inside[0], {ballot.id, everyone.id}), (outside, {everyone.id}), (nowhere, {everyone.id})):
        state = sign_in_as(new_browser(), db, person).get(f"/api/v1/wallet?purposes={ALL}").json()
        assert {item["ballot_id"] for item in state["due"] if item["purpose"] == "ballot"} == due
    wallet = Wallet(sign_in_as(new_browser(), db, inside[1]))
    assert wallet.collect().status_code == 200
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).credentials_issued == 1
    message, signature = wallet.held[("ballot", ballot.id)]
    assert answers.check_credential(ballot, message, signature)


def test_a_member_outside_the_audience_asking_for_its_credential_is_refused_in_plain_words(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    """The adversary: a member of Sales forges the bundle request to add Engineering's poll. Refused (403), with
    the reason and what to do, and nothing issued: no credential, no issuance row, no count."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    sales = group(db, rt, GroupKind.department, "Sales")
    members_of(db, engineering, 5)
    outsider = members_of(db, sales, 1)[0]
    ballot = groups_ballot(db, rt, [engineering])
    wallet = Wallet(sign_in_as(new_browser(), db, outsider))
    credential = wallet.credential("ballot", ballot.id, ballot.key_id, bytes(ballot.spki))
    forged = wallet.browser.api(  # type: ignore[union-attr]
        "POST",
        "/api/v1/wallet/tokens",
        {"tokens": [{"purpose": "ballot", "ballot_id": ballot.id, "blinded_message": b64e(credential.blinded_msg)}]},
    )
    assert forged.status_code == 403, forged.text
    words = forged.json()["error"]["message"]
    assert f"Poll {ballot.id} is put to members of chosen departments or locations" in words
    assert "give them on your account page" in words
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(BallotIssuance)) == 0
    assert db.get_one(Ballot, ballot.id).credentials_issued == 0
    # The service says the same to any caller (the command-line client, say).
    with pytest.raises(Forbidden):
        wallet_service.issue(
            db=db, rt=rt, user=outsider, requests=[(wallet_service.Purpose.ballot, ballot.id, credential.blinded_msg)]
        )


@pytest.mark.parametrize(
    ("audience", "words"),
    [
        (BallotAudience.groups, "This poll is put to the members of chosen departments or locations, not to a "),
        (BallotAudience.members, "This poll is put to every member, not to a petition's signers"),
        (BallotAudience.signers, "This poll's petition hands out no signer credentials"),
    ],
)
def test_a_signer_credential_offered_for_a_poll_it_does_not_open_is_refused_in_the_words_of_its_audience(
    audience: BallotAudience, words: str, bare: TestClient, db: Session, rt: Runtime
) -> None:
    """The adversary: a signer of a petition, outside the departments its groups' poll is put to (the wallet
    refuses them the poll's credential), offers their signer credential for it instead, without cookies. Refused
    (409) in words that say who the poll is put to, and nothing issued or written."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    members_of(db, engineering, rt.settings.min_group_size)
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    chosen = {"groups": [engineering.id]} if audience is BallotAudience.groups else {}
    ballot = ballot_helpers.petition_ballot(db, rt, petition, organizer, audience=audience, **chosen)
    if audience is BallotAudience.signers:  # a petition opened before signer credentials existed, its key not made yet
        db.execute(delete(SignerKey).where(SignerKey.petition_id == petition.id))
        db.commit()
    offered = {
        name: b64e(secrets.token_bytes(size)) for name, size in (("message", 48), ("signature", 384), ("blinded", 384))
    }
    refused = bare.post(f"/api/v1/ballots/{ballot.id}/exchange", json=offered)
    assert refused.status_code == 409, refused.text
    said = refused.json()["error"]["message"]
    assert said.startswith(words), said
    if audience is not BallotAudience.members:
        assert "every member" not in said
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(BallotExchange)) == 0
    assert db.get_one(Ballot, ballot.id).credentials_issued == 0


def test_moving_to_another_group_earns_no_second_credential(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    """The adversary: a member put in both groups of a poll, or who moves from one to the other, tries to collect
    twice (two answers). One credential per account per poll, whatever its groups."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    mover = members_of(db, engineering, 5)[0]
    members_of(db, lyon, 5)
    ballot = groups_ballot(db, rt, [engineering, lyon])
    wallet = Wallet(sign_in_as(new_browser(), db, mover))
    assert wallet.collect().status_code == 200
    audiences.set_member_groups(db=db, user=mover, department=None, location=str(lyon.id))
    db.commit()
    state = wallet.browser.get(f"/api/v1/wallet?purposes={ALL}").json()  # type: ignore[union-attr]
    assert [item for item in state["due"] if item["purpose"] == "ballot"] == []
    db.expire_all()
    assert db.get_one(Ballot, ballot.id).credentials_issued == 1
    assert db.scalar(select(func.count()).select_from(BallotIssuance).where(BallotIssuance.ballot_id == ballot.id)) == 1


def test_an_answer_names_no_group_and_no_account(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    """The operator's join: a counted answer's leaf and row carry the credential and the choice only, as for any
    poll; nothing in them says which of the poll's groups the answerer gave (no breakdown is published)."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    people = members_of(db, engineering, 5) + members_of(db, lyon, 5)
    ballot = groups_ballot(db, rt, [engineering, lyon])
    wallet = Wallet(sign_in_as(new_browser(), db, people[0]))
    assert wallet.collect().status_code == 200
    message, signature = wallet.held[("ballot", ballot.id)]
    assert answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=[1]) == 0
    db.commit()
    assert db.scalar(select(func.count()).select_from(BallotLeaf).where(BallotLeaf.ballot_id == ballot.id)) == 2
    for leaf in db.scalars(select(BallotLeaf).where(BallotLeaf.ballot_id == ballot.id, BallotLeaf.index > 0)):
        entry = json.loads(leaf.entry)
        assert set(entry) == {"kind", "message", "signature", "revision", "choice"}
        assert not re.search(r"Engineering|Lyon|department|location", leaf.entry.decode())


# The page --------------------------------------------------------------------------------------------------


def test_the_poll_page_tells_an_outsider_why_it_cannot_answer(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    sales = group(db, rt, GroupKind.department, "Sales")
    inside = members_of(db, engineering, 5)[0]
    outsider = members_of(db, sales, 1)[0]
    ballot = groups_ballot(db, rt, [engineering])
    refused = sign_in_as(new_browser(), db, outsider).get(f"/polls/{ballot.id}")
    assert refused.status_code == 200
    assert "This poll is put to the members of Engineering" in refused.text
    assert 'href="/account#poll-groups"' in refused.text
    assert "data-ballot-form" not in refused.text and "/static/ballot.js" not in refused.text
    member = sign_in_as(new_browser(), db, inside)
    page = member.get(f"/polls/{ballot.id}")
    assert "data-ballot-form" in page.text and "This poll is put to the members" not in page.text
    # The anonymity figure counts the credentials issued to this poll's audience only.
    assert 'data-hidden-among="0"' in page.text
    assert Wallet(member).collect().status_code == 200
    assert 'data-hidden-among="1"' in member.get(f"/polls/{ballot.id}").text


def test_the_list_of_polls_says_who_each_is_put_to(browser: Browser, db: Session, rt: Runtime) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    members_of(db, engineering, rt.settings.min_group_size)
    groups_ballot(db, rt, [engineering], question="Should the build servers move?")
    ballot_helpers.pulse_ballot(db, rt, question="Should Fridays be remote?")
    listed = {
        item.group(1): item.group(2)
        for item in re.finditer(
            r'<a href="/polls/\d+">([^<]+)</a>\s*<span class="meta">([^·]+)·', browser.get("/polls").text
        )
    }
    assert listed == {
        "Should the build servers move?": "for members of chosen departments or locations ",
        "Should Fridays be remote?": "for every member ",
    }


# The member's own groups -----------------------------------------------------------------------------------


def test_a_member_gives_and_takes_back_their_groups_on_the_account_page(
    browser: Browser, db: Session, rt: Runtime
) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    db.commit()
    member = factories.worker(db)
    sign_in_as(browser, db, member)
    page = browser.get("/account")
    assert 'action="/account/poll-groups"' in page.text
    saved = browser.post("/account/poll-groups", {"department": str(engineering.id), "location": str(lyon.id)})
    assert saved.status_code == 303
    assert {kind: item.id for kind, item in audiences.member_groups(db=db, user=member).items()} == {
        GroupKind.department: engineering.id,
        GroupKind.location: lyon.id,
    }
    assert f'<option value="{engineering.id}" selected>' in browser.get("/account").text
    # A location offered as a department, or an unknown id: refused by the field, nothing changed.
    for department, location in ((str(lyon.id), ""), ("999999", ""), ("1; drop", "")):
        refused = browser.post("/account/poll-groups", {"department": department, "location": location})
        assert refused.status_code == 422
        assert "Choose a department from the list, or none." in refused.text
    db.expire_all()
    assert len(audiences.member_groups(db=db, user=member)) == 2
    assert browser.post("/account/poll-groups", {"department": "", "location": ""}).status_code == 303
    assert audiences.member_groups(db=db, user=member) == {}


def test_giving_groups_needs_a_signed_in_member(client: TestClient, db: Session, rt: Runtime) -> None:
    engineering = group(db, rt, GroupKind.department, "Engineering")
    db.commit()
    before = db.scalar(select(func.count()).select_from(MemberGroup))
    response = client.post("/account/poll-groups", data={"department": str(engineering.id)})
    assert response.status_code in (303, 401, 403)
    assert db.scalar(select(func.count()).select_from(MemberGroup)) == before


# Verification ----------------------------------------------------------------------------------------------


def test_verify_passes_a_groups_poll_and_catches_an_audience_shown_otherwise(
    db: Session, rt: Runtime, client: TestClient, clock: FrozenClock, tmp_path: Path
) -> None:
    """`undersigned verify` checks the audience the API shows against entry 0: a server that shows the poll as put
    to Engineering alone while its log commits Engineering and Lyon is caught."""
    engineering = group(db, rt, GroupKind.department, "Engineering")
    lyon = group(db, rt, GroupKind.location, "Lyon")
    members_of(db, engineering, 5)
    members_of(db, lyon, 5)
    ballot = groups_ballot(db, rt, [engineering, lyon], days=1)
    for choice in ([0], [1], [0], [0], [1]):
        message, signature = ballot_helpers.credential(db, rt, ballot)
        answers.submit(db=db, rt=rt, ballot_id=ballot.id, message=message, signature=signature, choice=choice)
    db.commit()
    clock.advance(timedelta(days=1))

    def fetch(path: str) -> tuple[int, Any]:
        response = client.get(path)
        return response.status_code, response.json()

    def verify() -> ballot_client.BallotReport:
        url = f"http://testserver/polls/{ballot.id}"
        return ballot_client.verify(ballot_client.download(url, fetch), tmp_path / "state.json")

    report = verify()
    assert report.ok, report.problems
    assert report.counted == 5
    db.execute(delete(BallotGroup).where(BallotGroup.group_id == lyon.id))
    db.commit()
    assert "the audience the server shows is not the one its log commits" in verify().problems
