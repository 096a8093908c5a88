"""A plain member's petition page answered from the shared copy before the route (app/routes/petition_reader.py,
issue #24): the same bytes the route gives, in one statement, and the route for every reader it does not suit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.comments import service as comments
from app.core.runtime import Runtime
from app.models.accounts import Role, UserSession
from app.models.petitions import RejectionReason
from app.models.signatures import GroupKind, SignerGroup
from app.moderation import service as moderation
from app.petitions import page_cache, repository
from app.routes import petition_reader
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, counting_statements, sign_in_as

pytestmark = pytest.mark.one_database

NewBrowser = Callable[[], Browser]


@pytest.fixture(autouse=True)
def fresh_copies(app: FastAPI) -> None:
    page_cache.copies_of(app).clear()


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each signed-in petition page was answered here (True) or went on to the route (False)."""
    seen: list[bool] = []
    original = petition_reader._page

    def spy(*args: Any) -> Any:
        response = original(*args)
        seen.append(response is not None)
        return response

    monkeypatch.setattr(petition_reader, "_page", spy)
    return seen


def member(new_browser: NewBrowser, db: Session, name: str, roles: tuple[Role, ...] = ()) -> Browser:
    return sign_in_as(new_browser(), db, factories.worker(db, name=name, roles=roles))


def page(browser: Browser, petition) -> str:
    response = browser.get(f"/petitions/{petition.id}")
    assert response.status_code == 200, response.text
    return response.text


def by_the_route(browser: Browser, petition, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(petition_reader, "_page", lambda *args: None)
        return page(browser, petition)


def sign(db: Session, rt: Runtime, petition, user, visibility: str = "public") -> None:
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=user, visibility=visibility, notify_updates=False)
    db.commit()


def test_the_page_is_the_routes_byte_for_byte(db, rt, new_browser, monkeypatch, answered) -> None:
    """For a signer with a receipt, a reader with the sign form and its groups, and a follower: each page from the
    copy's frame (page_cache._framed), with the wallet script of a signer or of a reader who has not signed."""
    db.add_all(
        [
            SignerGroup(kind=GroupKind.department, name="Nursing", active=True),
            SignerGroup(kind=GroupKind.location, name="North wing", active=True),
            SignerGroup(kind=GroupKind.location, name="Closed wing", active=False),
        ]
    )
    db.commit()
    petition = factories.open_petition(db, rt, collect_attributes=True, allow_anonymous=True)
    factories.comment(db, rt, petition, body="A point everyone sees.")
    signer_user = factories.worker(db, name="Sam Signer")
    sign(db, rt, petition, signer_user, visibility="organizers")
    signer = sign_in_as(new_browser(), db, signer_user)
    reader = member(new_browser, db, 'Rae <Reader> & "Co"')  # the name escaped as the route escapes it
    follower_user = factories.worker(db, name="Flo Follower")
    follower = sign_in_as(new_browser(), db, follower_user)
    assert follower.post(f"/petitions/{petition.id}/follow").status_code == 303
    follower.get("/")  # the flash message shown and gone

    page(new_browser(), petition)  # the copy: made by the route for the first member
    page(member(new_browser, db, "First"), petition)
    for browser in (signer, reader, follower):
        here = page(browser, petition)
        assert answered[-1] is True
        assert here == by_the_route(browser, petition, monkeypatch)
    assert "Withdraw my signature" in page(signer, petition)
    assert "Nursing" in page(reader, petition) and "Closed wing" not in page(reader, petition)
    assert "Stop following" in page(follower, petition)


def test_a_member_page_runs_one_statement(db, rt, new_browser, connection, answered) -> None:
    petition = factories.open_petition(db, rt)
    for index in range(5):
        factories.comment(db, rt, petition, body=f"Point {index}.")
    first, second = member(new_browser, db, "Ada"), member(new_browser, db, "Bo")
    page(first, petition)
    with counting_statements(connection) as statements:
        page(second, petition)
    assert answered[-1] is True
    # The session's account, whether it may read the petition, its own state there and the petition's row.
    assert len(statements) == 1, statements


def test_a_member_page_with_the_sign_forms_groups_runs_one_statement(db, rt, new_browser, connection, answered) -> None:
    """The sign form's departments and locations come from the process's memory (`groups.offered`): before, a second
    statement on every page of a member who had not signed, a fifth of such a page's CPU in the viral petition."""
    db.add_all([SignerGroup(kind=GroupKind.department, name="Nursing", active=True)])
    db.commit()
    petition = factories.open_petition(db, rt, collect_attributes=True)
    first, second = member(new_browser, db, "Ada"), member(new_browser, db, "Bo")
    page(first, petition)
    with counting_statements(connection) as statements:
        here = page(second, petition)
    assert answered[-1] is True and ">Nursing</option>" in here
    assert len(statements) == 1, statements


def test_a_department_an_admin_adds_or_withdraws_shows_on_the_sign_form_at_once(db, rt, new_browser) -> None:
    petition = factories.open_petition(db, rt, collect_attributes=True)
    reader = member(new_browser, db, "Rae Reader")
    assert ">Night shift</option>" not in page(reader, petition)  # the lists as they were, now in memory
    admin = member(new_browser, db, "Ann Admin", roles=(Role.admin,))
    assert admin.post("/admin/lists/department", {"name": "Night shift"}).status_code == 303
    assert ">Night shift</option>" in page(reader, petition)
    added = db.scalars(select(SignerGroup).where(SignerGroup.name == "Night shift")).one()
    assert admin.post(f"/admin/lists/department/{added.id}/toggle").status_code == 303
    assert ">Night shift</option>" not in page(reader, petition)


def test_readers_it_does_not_suit_get_the_route(db, rt, new_browser, answered) -> None:
    organizer_user = factories.worker(db, name="Olu Organizer")
    petition = factories.open_petition(db, rt, creator=organizer_user)
    author_user = factories.worker(db, name="Cam Commenter")
    comment = factories.comment(db, rt, petition, author=author_user, body="Mine.")
    page(member(new_browser, db, "First"), petition)  # the copy

    organizer = sign_in_as(new_browser(), db, organizer_user)
    assert "For organizers" in page(organizer, petition) and answered[-1] is False
    moderator = member(new_browser, db, "Mo Moderator", roles=(Role.moderator,))
    page(moderator, petition)
    assert answered[-1] is False
    author = sign_in_as(new_browser(), db, author_user)
    assert f"/comments/{comment.id}/edit" in page(author, petition) and answered[-1] is False
    endorser_user = factories.worker(db, name="Eve Endorser")
    comments.endorse(db=db, petition=petition, comment=comment, user=endorser_user)
    db.commit()
    page(sign_in_as(new_browser(), db, endorser_user), petition)
    assert answered[-1] is False


def test_an_expired_session_gets_no_members_page(db, rt, new_browser, clock, answered) -> None:
    """The attacker's method: a session cookie kept past its expiry, sent to a page a member's copy answers."""
    petition = factories.open_petition(db, rt)
    page(member(new_browser, db, "First"), petition)  # the copy
    user = factories.worker(db, name="Ex Pired")
    browser = sign_in_as(new_browser(), db, user)
    db.execute(update(UserSession).where(UserSession.user_id == user.id).values(expires_at=clock.now()))
    db.commit()
    html = page(browser, petition)
    assert answered[-1] is False
    assert "Ex Pired" not in html and "Sign in to sign" in html


def test_a_hidden_petition_disappears_for_members_at_once(db, rt, new_browser, answered) -> None:
    petition = factories.open_petition(db, rt)
    reader = member(new_browser, db, "Ada")
    page(reader, petition), page(reader, petition)
    assert answered[-1] is True
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert reader.get(f"/petitions/{petition.id}").status_code == 404


def test_a_row_changed_behind_the_version_is_not_answered_from_the_copy(db, rt, new_browser, answered) -> None:
    """A change the version counter missed (an operator's SQL, a counter Redis lost) still shows: the copy's row
    no longer matches the petition's."""
    petition = factories.open_petition(db, rt)
    reader = member(new_browser, db, "Ada")
    page(reader, petition)
    petition.title = "A title changed behind the counter"
    db.commit()
    assert "A title changed behind the counter" in page(reader, petition)
    assert answered[-1] is True  # a copy made anew, from the row as it is, before the route


def test_a_petition_past_its_deadline_is_closed_by_the_route(db, rt, new_browser, clock, answered) -> None:
    petition = factories.open_petition(db, rt)
    reader = member(new_browser, db, "Ada")
    page(reader, petition)
    petition.deadline = clock.now() - timedelta(minutes=1)
    db.commit()
    html = page(reader, petition)
    assert answered[-1] is False and "Sign this petition" not in html


def test_a_rejection_withheld_later_disappears_for_members_at_once(db, rt, new_browser, answered) -> None:
    """The attacker's method: keep reading a rejected petition after its reason was made private. That change is
    in the reasons' table, not the petition's row or version, so the copy alone would still answer."""
    petition = factories.petition_in_moderation(db, rt)
    moderation.reject(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), code="duplicate", note=None)
    db.commit()
    reader = member(new_browser, db, "Ada")
    page(reader, petition), page(reader, petition)
    assert answered[-1] is True
    db.execute(update(RejectionReason).where(RejectionReason.code == "duplicate").values(public=False))
    db.commit()
    assert reader.get(f"/petitions/{petition.id}").status_code == 404


def test_a_petition_hidden_after_the_readers_statement_is_not_made_into_a_copy(
    db, rt, new_browser, monkeypatch, answered
) -> None:
    """The attacker's method is a race (found in review): a moderator hides the petition after the reader's one
    statement said they may read it and before the copy is made from the petition loaded again. The copy must not
    be made from a petition nobody but its organizers and the moderators may read."""
    import dataclasses

    petition = factories.open_petition(db, rt)
    reader = member(new_browser, db, "Ada")
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    real = repository.signed_in_reader

    def read_before_the_hiding(**kwargs):
        found = real(**kwargs)
        assert found is not None
        return dataclasses.replace(found, readable=True)  # what the statement said a moment before the hiding

    monkeypatch.setattr(repository, "signed_in_reader", read_before_the_hiding)
    copies = page_cache.copies_of(reader.client.app)
    rendered = copies.rendered
    answer = reader.get(f"/petitions/{petition.id}")
    assert answer.status_code == 404 and "Names a colleague." not in answer.text
    assert answered[-1] is False  # the route decided
    assert copies.rendered == rendered  # and no copy was made of it


def test_a_database_failing_while_a_member_page_makes_the_copy_is_answered_in_plain_words(
    db, rt, new_browser, monkeypatch, answered
) -> None:
    """A database that fails while the copy is made before the route gets the route's answer (503, plain words),
    not the 500 of an error outside its handlers."""
    from sqlalchemy.exc import OperationalError

    from app.routes import petitions_pages

    petition = factories.open_petition(db, rt)
    reader = member(new_browser, db, "Ada")

    def database_gone(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(petitions_pages, "shared_page_context", database_gone)
    answer = reader.get(f"/petitions/{petition.id}")
    assert answer.status_code == 503, answer.text[-500:]
    assert answered[-1] is False
