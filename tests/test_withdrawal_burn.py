"""Withdrawals burn: a token spent by a signature with a name stays spent when that signature is withdrawn, and no
nullifier is ever kept next to an account. The public counts say how many tokens were spent by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from app.anonymous import service as anonymous
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.anonymous import IssuingKey
from tests import factories
from tests.conftest import Browser, count_rows, make_settings, sign_in_as
from tests.test_anonymous import count, open_anonymous, submit, wallet

NewBrowser = Callable[[], Browser]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def key_counts(db: Session, petition_id: int) -> tuple[int, int, int]:
    db.expire_all()
    key = db.get_one(IssuingKey, petition_id)
    return key.tokens_issued, key.spent_by_name, key.anonymous_signatures


def named(token: tuple[bytes, bytes] | None) -> dict[str, object]:
    body: dict[str, object] = {"visibility": "public"}
    if token is not None:
        body["token"] = {"message": anonymous.encode(token[0]), "signature": anonymous.encode(token[1])}
    return body


def test_withdrawing_burns_the_token_and_the_member_signs_again_by_name_only(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    token = tokens[petition.id]
    path = f"/api/v1/petitions/{petition.id}/signature"
    assert member.api("POST", path, named(token)).status_code == 201
    assert key_counts(db, petition.id) == (1, 1, 0)
    assert member.api("DELETE", path).status_code == 204
    assert count(db, petition) == 0
    # The token stays spent: the anonymous path is refused in plain words, and nothing is counted.
    response = submit(anonymous_client, petition.id, token)
    assert response.status_code == 409
    assert "stays used after that signature is withdrawn" in response.json()["error"]["message"]
    assert count(db, petition) == 0 and count_rows(db, "spent_tokens") == 1
    # Signing again with a name needs no token (it is burned), and spends nothing more.
    assert member.api("POST", path, named(None)).status_code == 201
    assert count(db, petition) == 1 and key_counts(db, petition.id) == (1, 1, 0)
    assert member.api("DELETE", path).status_code == 204
    assert member.api("POST", path, named(token)).status_code == 201  # the old token changes nothing either
    assert key_counts(db, petition.id) == (1, 1, 0)
    # No fresh token: the wallet has nothing due for this petition.
    assert petition.id not in [
        key["petition_id"] for key in member.get("/api/v1/wallet").json()["due"] if key["purpose"] == "sign"
    ]


def test_no_nullifier_sits_next_to_an_account(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    assert (
        member.api("POST", f"/api/v1/petitions/{petition.id}/signature", named(tokens[petition.id])).status_code == 201
    )
    assert "token_nullifier" not in {column["name"] for column in inspect(db.connection()).get_columns("signatures")}
    [spent] = db.execute(text("SELECT nullifier FROM spent_tokens")).scalars().all()
    for table in ("signatures", "token_issuances", "users", "audit_log"):
        for row in db.execute(text(f"SELECT * FROM {table}")).mappings():
            assert not any(spent in str(value) for value in row.values()), table


def test_a_named_signer_without_a_token_who_withdraws_is_issued_none(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    path = f"/api/v1/petitions/{petition.id}/signature"
    assert member.api("POST", path, named(None)).status_code == 201  # the wallet never collected a token
    assert member.api("DELETE", path).status_code == 204
    assert petition.id not in [
        key["petition_id"] for key in member.get("/api/v1/wallet").json()["due"] if key["purpose"] == "sign"
    ]
    tokens, _ = wallet(member)
    assert petition.id not in tokens
    # Neither public count moves: no token was issued, none was spent by name.
    assert key_counts(db, petition.id) == (0, 0, 0)
    assert member.api("POST", path, named(None)).status_code == 201


def test_the_public_counts_show_tokens_spent_by_name(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    by_name = sign_in_as(new_browser(), db, factories.worker(db))
    hidden = sign_in_as(new_browser(), db, factories.worker(db))
    named_tokens, _ = wallet(by_name)
    hidden_tokens, _ = wallet(hidden)
    assert (
        by_name.api("POST", f"/api/v1/petitions/{petition.id}/signature", named(named_tokens[petition.id])).status_code
        == 201
    )
    assert submit(anonymous_client, petition.id, hidden_tokens[petition.id]).status_code == 202
    ledger = new_browser().get(f"/api/v1/petitions/{petition.id}/anonymous-signatures").json()
    assert (ledger["tokens_issued"], ledger["spent_by_name"], ledger["anonymous_signatures"]) == (2, 1, 1)
    assert ledger["anonymous_signatures"] <= ledger["tokens_issued"] - ledger["spent_by_name"]
    page = new_browser().get(f"/petitions/{petition.id}").text
    assert "1 spent with a name" in page


def test_the_sign_panel_tells_a_member_who_withdrew_why_anonymity_is_gone(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    path = f"/api/v1/petitions/{petition.id}/signature"
    assert member.api("POST", path, named(tokens[petition.id])).status_code == 201
    assert member.api("DELETE", path).status_code == 204
    page = member.get(f"/petitions/{petition.id}").text
    assert "You may sign again with your name, but not anonymously" in page
    assert "data-anonymous-choice" not in page
