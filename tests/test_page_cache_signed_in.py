"""The petition page's shared copy (issue #24): what is the same for every reader is rendered once per page version
and each reader's own parts are filled in per request. These tests pin what that must never change: a change shows
to every reader at once, no reader sees another's controls or CSRF token, a hidden petition disappears at once."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.comments import service as comments
from app.core.runtime import Runtime
from app.models.accounts import Role
from app.moderation import service as moderation
from app.petitions import page_cache
from app.responses import service as responses
from app.responses.schemas import ResponseCreate
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, counting_statements, sign_in_as
from tests.test_anonymous import submit, wallet

pytestmark = pytest.mark.one_database

NewBrowser = Callable[[], Browser]
TOKENS = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture(autouse=True)
def fresh_copies(app: FastAPI) -> None:
    """The app is shared between tests, and petition ids come round again on SQLite."""
    page_cache.copies_of(app).clear()


def member(new_browser: NewBrowser, db: Session, name: str) -> Browser:
    return sign_in_as(new_browser(), db, factories.worker(db, name=name))


def page(browser: Browser, petition) -> str:
    response = browser.get(f"/petitions/{petition.id}")
    assert response.status_code == 200, response.text
    return response.text


def sign(db: Session, rt: Runtime, petition, user) -> None:
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=user, visibility="public", notify_updates=False)
    db.commit()


def test_members_share_one_copy_and_each_gets_their_own_parts(db, rt, app, new_browser) -> None:
    petition = factories.open_petition(db, rt)
    copies = page_cache.copies_of(app)
    readers = [member(new_browser, db, f"Reader {i}") for i in range(3)]
    before = copies.rendered
    pages = [page(reader, petition) for reader in readers]
    assert copies.rendered - before == 1
    for reader, html in zip(readers, pages, strict=True):
        assert set(TOKENS.findall(html)) == {reader.csrf()}
        assert page_cache.CSRF_PLACEHOLDER not in html and "<!--reader:" not in html
        assert f'action="/petitions/{petition.id}/sign"' in html and "Follow this petition" in html


def test_a_signature_a_comment_and_a_response_show_to_every_reader_at_once(db, rt, new_browser) -> None:
    petition = factories.open_petition(db, rt)
    readers = [member(new_browser, db, "Ada"), member(new_browser, db, "Bo"), new_browser()]
    for reader in readers:
        assert "<strong>0</strong> signatures" in page(reader, petition)

    sign(db, rt, petition, factories.worker(db, name="Sam Signer"))
    for reader in readers:
        assert "<strong>1</strong> signature" in page(reader, petition)

    factories.comment(db, rt, petition, body="The recordings must stop.")
    for reader in readers:
        assert "The recordings must stop." in page(reader, petition)

    responder = factories.worker(db, name="Lee Leader", roles=(Role.responder,))
    responses.post_response(
        db=db,
        rt=rt,
        petition=petition,
        responder=responder,
        form=ResponseCreate(status="under_review", summary="We are looking into the recordings.", details="Soon."),
    )
    db.commit()
    for reader in readers:
        assert "We are looking into the recordings." in page(reader, petition)


def test_no_reader_sees_another_readers_controls_or_token(db, rt, new_browser) -> None:
    organizer_user = factories.worker(db, name="Olu Organizer")
    petition = factories.open_petition(db, rt, creator=organizer_user)
    signer_user = factories.worker(db, name="Sam Signer")
    sign(db, rt, petition, signer_user)
    comment = factories.comment(db, rt, petition, author=signer_user, body="Mine, by the signer.")
    other = member(new_browser, db, "Oda Other")
    signer = sign_in_as(new_browser(), db, signer_user)
    organizer = sign_in_as(new_browser(), db, organizer_user)
    comments.endorse(db=db, petition=petition, comment=comment, user=organizer_user)
    db.commit()

    # Each reader in turn, the copy made by the first: a signer first, so their parts would show to the next.
    pages = {
        name: page(browser, petition) for name, browser in (("signer", signer), ("other", other), ("org", organizer))
    }
    tokens = {"signer": signer.csrf(), "other": other.csrf(), "org": organizer.csrf()}
    assert len(set(tokens.values())) == 3
    for name, html in pages.items():
        assert set(TOKENS.findall(html)) == {tokens[name]}, name
        assert page_cache.CSRF_PLACEHOLDER not in html

    assert "Withdraw my signature" in pages["signer"]
    assert "Withdraw my signature" not in pages["other"] and "Withdraw my signature" not in pages["org"]
    assert f"/comments/{comment.id}/edit" in pages["signer"]
    assert f"/comments/{comment.id}/edit" not in pages["other"]
    assert "For organizers" in pages["org"]
    assert "For organizers" not in pages["other"] and "For organizers" not in pages["signer"]
    endorse = re.compile(rf'action="/comments/{comment.id}/endorse".*?aria-pressed="(\w+)"', re.DOTALL)
    assert endorse.search(pages["org"]).group(1) == "true"  # type: ignore[union-attr]
    assert endorse.search(pages["other"]).group(1) == "false"  # type: ignore[union-attr]
    # And the other way round: the member after the organizer and the signer still sees only their own.
    again = page(other, petition)
    assert set(TOKENS.findall(again)) == {tokens["other"]}
    assert "Withdraw my signature" not in again and "For organizers" not in again


def test_a_hidden_petition_disappears_at_once(db, rt, new_browser) -> None:
    petition = factories.open_petition(db, rt)
    reader, signed_out = member(new_browser, db, "Ada"), new_browser()
    page(reader, petition), page(signed_out, petition)
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert reader.get(f"/petitions/{petition.id}").status_code == 404
    assert signed_out.get(f"/petitions/{petition.id}").status_code == 404


def test_an_anonymous_signers_page_holds_nothing_of_theirs(db, rt, new_browser, app) -> None:
    """After signing anonymously the worker's page is any member's page: the server does not know, and nothing in
    the copy others share comes from them."""
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    signer, other = member(new_browser, db, "Ana Nonymous"), member(new_browser, db, "Oda Other")
    tokens, _ = wallet(signer)
    wallet(other)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as anonymous_client:
        assert submit(anonymous_client, petition.id, tokens[petition.id]).status_code == 202

    mine, theirs = page(signer, petition), page(other, petition)
    assert "<strong>1</strong> signature" in mine
    assert mine.replace(signer.csrf(), "TOKEN").replace("Ana Nonymous", "NAME").replace(
        f'"undersigned-account" content="{_account_id(mine)}"', ""
    ) == theirs.replace(other.csrf(), "TOKEN").replace("Oda Other", "NAME").replace(
        f'"undersigned-account" content="{_account_id(theirs)}"', ""
    )


def _account_id(html: str) -> int:
    found = re.search(r'"undersigned-account" content="(\d+)"', html)
    return int(found.group(1)) if found else -1


def test_a_member_page_from_the_copy_runs_few_queries(db, rt, new_browser, connection) -> None:
    petition = factories.open_petition(db, rt)
    for index in range(5):
        factories.comment(db, rt, petition, body=f"Point {index}.")
    first, second = member(new_browser, db, "Ada"), member(new_browser, db, "Bo")
    page(first, petition)
    with counting_statements(connection) as statements:
        page(second, petition)
    # the session and its user, the petition, the reader's state, their endorsements, the organization's look
    assert len(statements) <= 8, statements
