"""An observer polling a petition's live updates cannot date an anonymous action finer than its batch (issue #24).

The petition's page version (app/core/versions.py) moves when anything the page shows changes, and every open page's
poll reads it: the ETag of the petition's JSON and of the discussion's "new comments", and the key of the page's
shared copy. Anyone may poll them, as often as they like. If the version moved when an anonymous signature or
comment was accepted, rather than when its batch was written, the poller would see the second it arrived, and the
batch's shuffling and hour would hide nothing (docs/architecture.md, "Metadata"). The attacker here polls between
each anonymous submission and the batch, with every signal a poller has, and asserts that nothing moves until the
batch is written; and that a batch held back (fewer than k waiting) moves nothing either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous import service as anonymous
from app.anonymous.queue import anonymous_queue
from app.comments import anonymous as anonymous_comments
from app.comments.queue import comment_queue
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.petitions import Petition
from tests import factories
from tests.conftest import Browser, make_settings, sign_in_as
from tests.test_anonymous import open_anonymous, submit, wallet

NewBrowser = Callable[[], Browser]
K = 3  # the minimum group size of these tests: three members make a batch


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Batching on, as in production: accepted actions wait in memory for a batch the test runs.
    return make_settings(
        database_url,
        anonymous_batch_seconds=3600,
        anonymous_max_delay_seconds=6 * 3600,
        min_group_size=K,
        shared_page_seconds=0,
    )


@pytest.fixture
def cookieless(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


@dataclass(frozen=True)
class Seen:
    """Everything a poller learns of the petition at one moment."""

    version: int | None
    petition_etag: str
    comments_etag: str
    petition_polled: int  # the status of a poll that names the first ETag it was given
    comments_polled: int
    page: str


class Poller:
    """The attacker: a signed-out reader polling the petition's live updates and page, keeping the first ETags."""

    def __init__(self, browser: Browser, rt: Runtime, petition: Petition) -> None:
        self.browser, self.rt, self.petition = browser, rt, petition
        self.petition_path = f"/api/v1/petitions/{petition.id}"
        self.comments_path = f"/petitions/{petition.id}/comments/new?after="
        self.first_petition_etag = self.browser.get(self.petition_path).headers["etag"]
        self.first_comments_etag = self.browser.get(self.comments_path).headers["etag"]

    def look(self) -> Seen:
        petition = self.browser.get(self.petition_path)
        comments = self.browser.get(self.comments_path)
        assert petition.status_code == comments.status_code == 200
        return Seen(
            version=self.rt.page_versions.get(self.petition.id),
            petition_etag=petition.headers["etag"],
            comments_etag=comments.headers["etag"],
            petition_polled=self.browser.get(
                self.petition_path, headers={"If-None-Match": self.first_petition_etag}
            ).status_code,
            comments_polled=self.browser.get(
                self.comments_path, headers={"If-None-Match": self.first_comments_etag}
            ).status_code,
            page=self.browser.get(f"/petitions/{self.petition.id}").text,
        )


def members_with_credentials(new_browser: NewBrowser, db: Session, petition: Petition, count: int) -> list:
    """`count` members who collected the petition's signing token and discussion credential (their wallets)."""
    tokens = []
    for _ in range(count):
        collected, response = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
        assert response.status_code == 200
        tokens.append(collected[petition.id])
    return tokens


def test_anonymous_signatures_move_the_version_only_when_their_batch_is_written(
    new_browser: NewBrowser, db: Session, rt: Runtime, connection: Connection, cookieless: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    tokens = members_with_credentials(new_browser, db, petition, K)
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    poller = Poller(new_browser(), rt, petition)
    before = poller.look()
    assert before.petition_polled == before.comments_polled == 304  # the poller's tags hold while nothing changes

    for number, token in enumerate(tokens, start=1):
        assert submit(cookieless, petition.id, token).status_code == 202
        assert poller.look() == before, f"the version moved when anonymous signature {number} was accepted"
        if number < K:
            # A batch that holds the group back (fewer than k wait) publishes nothing, and must say nothing.
            assert anonymous.write_batch(sessions=sessions, rt=rt) == 0
            assert poller.look() == before, "a batch that held the signatures back moved the version"
    assert len(anonymous_queue(rt)) == K

    assert anonymous.write_batch(sessions=sessions, rt=rt) == K
    after = poller.look()
    assert after.version != before.version
    assert after.petition_polled == after.comments_polled == 200  # the batch is public: every open page learns it
    assert poller.browser.get(poller.petition_path).json()["signature_count"] == K


def test_anonymous_comments_and_their_changes_move_the_version_only_when_their_batch_is_written(
    new_browser: NewBrowser, db: Session, rt: Runtime, connection: Connection, cookieless: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    members_with_credentials(new_browser, db, petition, K)
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    # A comment of an earlier batch, which its author edits and another deletes now.
    credentials = [factories.discussion_credential(db, rt, petition) for _ in range(K)]
    published = [
        factories.anonymous_comment(db, rt, petition, body=f"An earlier point, number {n}.", credential=credential)
        for n, credential in enumerate(credentials[:2])
    ]
    poller = Poller(new_browser(), rt, petition)
    before = poller.look()
    assert before.petition_polled == before.comments_polled == 304

    def encoded(value: bytes) -> str:
        return anonymous.encode(value)

    actions = [
        (
            "a new comment",
            "/api/v1/anonymous/comments",
            {
                "petition_id": petition.id,
                "message": encoded(credentials[2][0]),
                "signature": encoded(credentials[2][1]),
                "body": "The night shift was never asked.",
            },
        ),
        (
            "an edit",
            f"/api/v1/anonymous/comments/{published[0].id}/edit",
            {
                "message": encoded(credentials[0][0]),
                "signature": encoded(credentials[0][1]),
                "body": "An earlier point, made clearer.",
            },
        ),
        (
            "a reply",
            "/api/v1/anonymous/comments",
            {
                "petition_id": petition.id,
                "parent_id": published[0].id,
                "message": encoded(credentials[1][0]),
                "signature": encoded(credentials[1][1]),
                "body": "Seconded, from another team.",
            },
        ),
    ]
    for what, path, body in actions:
        cookieless.cookies.clear()
        answer = cookieless.post(path, json=body)
        assert answer.status_code == 202, answer.text
        assert poller.look() == before, f"the version moved when {what} was accepted"
    # A deletion waits for the next batch too: at once, its moment would be public.
    cookieless.cookies.clear()
    deleted = cookieless.post(
        f"/api/v1/anonymous/comments/{published[1].id}/delete", json={"message": encoded(credentials[1][0])}
    )
    assert deleted.status_code == 202, deleted.text
    assert poller.look() == before, "the version moved when a deletion was accepted"
    assert len(comment_queue(rt)) == 4  # two comments, an edit and a deletion wait

    assert anonymous_comments.write_batch(sessions=sessions, rt=rt) == 2
    after = poller.look()
    assert after.version != before.version
    assert after.petition_polled == after.comments_polled == 200
    assert "The night shift was never asked." in after.page
