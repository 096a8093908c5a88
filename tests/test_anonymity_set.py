"""The anonymity set: how many colleagues an anonymous signer hides among (token holders who did not sign with a
name), shown to everyone, and a warning with a confirmation before an anonymous signature below k."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.anonymous import anonymity
from app.anonymous import service as anonymous
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.anonymous import IssuingKey
from tests import factories
from tests.conftest import Browser, make_settings, sign_in_as
from tests.test_anonymous import open_anonymous, submit, wallet

NewBrowser = Callable[[], Browser]
WARNING = "counting can reveal that everyone left signed anonymously"
CONFIRM = 'name="confirm_small_set" value="1" required disabled data-anonymous-confirm'


def key(issued: int, by_name: int, anonymous_signatures: int = 0) -> IssuingKey:
    return IssuingKey(
        petition_id=1,
        key_id="k",
        spki=b"",
        tokens_issued=issued,
        spent_by_name=by_name,
        anonymous_signatures=anonymous_signatures,
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
    )


def test_the_set_is_tokens_issued_less_tokens_spent_by_name() -> None:
    assert anonymity.signing_set(key(10, 3)) == 7
    assert anonymity.signing_set(None) is None
    figures = anonymity.AnonymitySet(signing=4, min_group_size=5, signing_left=4)
    assert figures.signing_below_k and figures.signing_warning
    assert figures.as_dict() == {"signing": 4, "discussion": None, "min_group_size": 5}
    enough = anonymity.AnonymitySet(signing=5, min_group_size=5, signing_left=5)
    assert not enough.signing_below_k and not enough.signing_warning
    # Enough holders, but one left who has not signed: counting would show everyone left signed.
    last = anonymity.AnonymitySet(signing=9, min_group_size=5, signing_left=1)
    assert not last.signing_below_k and last.signing_warning


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    return make_settings(database_url, **getattr(request, "param", {}))


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def named(token: tuple[bytes, bytes]) -> dict[str, object]:
    return {
        "visibility": "organizers",
        "token": {"message": anonymous.encode(token[0]), "signature": anonymous.encode(token[1])},
    }


def test_the_api_answers_anyone_who_may_read_the_petition(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    reader = new_browser()
    path = f"/api/v1/petitions/{petition.id}/anonymity"
    assert reader.get(path).json() == {"signing": 0, "discussion": 0, "min_group_size": 5}
    members = [sign_in_as(new_browser(), db, factories.worker(db)) for _ in range(3)]
    tokens = [wallet(member)[0][petition.id] for member in members]
    assert reader.get(path).json() == {"signing": 3, "discussion": 3, "min_group_size": 5}
    # A token spent with a name leaves the set, and stays out after a withdrawal.
    assert members[0].api("POST", f"/api/v1/petitions/{petition.id}/signature", named(tokens[0])).status_code == 201
    assert reader.get(path).json()["signing"] == 2
    assert members[0].api("DELETE", f"/api/v1/petitions/{petition.id}/signature").status_code == 204
    assert reader.get(path).json()["signing"] == 2
    named_only = factories.open_petition(db, rt, title="Named only")
    assert reader.get(f"/api/v1/petitions/{named_only.id}/anonymity").json() == {
        "signing": None,
        "discussion": None,
        "min_group_size": 5,
    }
    draft = factories.draft_petition(db, rt)  # only its organizers may read it
    assert reader.get(f"/api/v1/petitions/{draft.id}/anonymity").status_code == 404
    assert reader.get("/api/v1/petitions/999999/anonymity").status_code == 404


def test_the_petition_page_shows_everyone_the_same_figure(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    for _ in range(2):
        wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    signed_out = new_browser().get(f"/petitions/{petition.id}").text
    member = sign_in_as(new_browser(), db, factories.worker(db))
    signed_in = member.get(f"/petitions/{petition.id}").text
    for page in (signed_out, signed_in):
        assert "Anonymous signers are hidden among 2 colleagues who collected a signing token" in page
        assert 'data-anonymity-set="2"' in page


def test_below_k_the_sign_panel_warns_and_asks_for_confirmation(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    wallet(member)
    page = member.get(f"/petitions/{petition.id}").text
    assert "You would be hidden among 1 colleague who collected this petition's signing token" in page
    assert "fewer than 5" in page and "could pick you out" in page and WARNING in page
    assert CONFIRM in page


@pytest.mark.parametrize("settings", [{"min_group_size": 2}], indirect=True)
def test_at_k_no_warning_until_the_signer_may_be_the_last(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    members = [sign_in_as(new_browser(), db, factories.worker(db)) for _ in range(3)]
    tokens = [wallet(member)[0][petition.id] for member in members]
    page = members[2].get(f"/petitions/{petition.id}").text
    assert "You would be hidden among 3 colleagues" in page
    assert WARNING not in page and "data-anonymous-confirm" not in page
    for token in tokens[:2]:
        assert submit(anonymous_client, petition.id, token).status_code == 202
    page = members[2].get(f"/petitions/{petition.id}").text
    assert "you may be the last colleague holding this petition's token who has not signed" in page
    assert WARNING in page and CONFIRM in page
