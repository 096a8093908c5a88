"""The petition page's version and the live polls (issue #24): an open page's poll is answered 304 without the
database while nothing changed, and every change that shows on the page moves the version, so no poll is told
"unchanged" after a change."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.core import versions
from app.core.runtime import Runtime
from app.moderation import service as moderation
from app.signatures import service as signatures
from tests import factories
from tests.conftest import counting_statements

pytestmark = pytest.mark.one_database


def sign(db: Session, rt: Runtime, petition, name: str) -> None:
    signatures.sign(
        db=db,
        rt=rt,
        petition_id=petition.id,
        user=factories.worker(db, name=name),
        visibility="public",
        notify_updates=False,
    )
    db.commit()


def test_an_unchanged_petition_is_answered_304_without_the_database(db, rt, browser, connection) -> None:
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    first = browser.get(url)
    assert first.status_code == 200 and first.headers["ETag"]

    with counting_statements(connection) as statements:
        again = browser.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert statements == []


def test_a_signature_changes_the_answer(db, rt, browser) -> None:
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    etag = browser.get(url).headers["ETag"]
    sign(db, rt, petition, "Sam Signer")

    answer = browser.get(url, headers={"If-None-Match": etag})
    assert answer.status_code == 200
    assert answer.json()["signature_count"] == 1
    assert answer.headers["ETag"] != etag


def test_a_hidden_petition_is_not_answered_unchanged(db, rt, browser) -> None:
    petition = factories.open_petition(db, rt)
    url = f"/api/v1/petitions/{petition.id}"
    etag = browser.get(url).headers["ETag"]
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()

    assert browser.get(url, headers={"If-None-Match": etag}).status_code == 404


def test_a_guessed_tag_gets_the_full_answer(db, rt, browser) -> None:
    """A tag is a keyed hash: without reading the petition once, nobody can learn from a 304 that it exists."""
    petition = factories.draft_petition(db, rt)
    version = rt.page_versions.get(petition.id)
    unkeyed = versions.hmac.new(b"", f"{petition.id}:{version}".encode(), "sha256").hexdigest()[:24]
    for guess in (f'"{unkeyed}"', '"0"', "*"):
        assert browser.get(f"/api/v1/petitions/{petition.id}", headers={"If-None-Match": guess}).status_code == 404


def test_new_comments_poll_is_answered_304_until_a_comment_comes(db, rt, browser, connection) -> None:
    petition = factories.open_petition(db, rt)
    url = f"/petitions/{petition.id}/comments/new?after="
    first = browser.get(url)
    assert first.status_code == 200 and first.headers["X-New-Comments"] == "0"
    etag = first.headers["ETag"]
    with counting_statements(connection) as statements:
        assert browser.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert statements == []

    factories.comment(db, rt, petition, body="The recordings must stop.")
    answer = browser.get(url, headers={"If-None-Match": etag})
    assert answer.status_code == 200
    assert answer.headers["X-New-Comments"] == "1"


def test_every_change_on_the_page_moves_the_version(db, rt) -> None:
    """The services bump it: a signature, a comment, an endorsement, a moderator's decision."""
    petition = factories.open_petition(db, rt)
    seen = [rt.page_versions.get(petition.id)]

    def moved() -> bool:
        seen.append(rt.page_versions.get(petition.id))
        return seen[-1] != seen[-2]

    sign(db, rt, petition, "Sam Signer")
    assert moved()
    comment = factories.comment(db, rt, petition)
    assert moved()
    from app.comments import service as comments

    comments.endorse(db=db, petition=petition, comment=comment, user=factories.worker(db, name="Endorser"))
    db.commit()
    assert moved()
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert moved()
