"""A petition page's shared copy survives the request that made it (review finding, issue #24): a copy kept by a
request that then failed held that request's ORM objects, expired by its rollback, and every following reader got
a 500 until the copy aged out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import InstanceState

from app.petitions import page_cache
from app.routes import petitions_pages as petition_pages
from tests import factories
from tests.conftest import sign_in_as
from tests.test_page_versions import sign


def test_a_copy_made_by_a_request_that_failed_serves_the_next_reader(db, rt, new_browser, monkeypatch) -> None:
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    sign(db, rt, petition, "Sam Signer")
    # The first reader wrote a comment too, so their page goes the route (a member's page with no copy to fill is
    # made before it, app/routes/petition_reader.py), where the request fails after the copy was made.
    first_author = factories.worker(db, name="First")
    factories.comment(db, rt, petition, author=first_author, body="An earlier point.")
    first = sign_in_as(new_browser(), db, first_author)
    # The second reader wrote a comment: their page looks up their own among the copy's comments.
    author = factories.worker(db, name="Second")
    factories.comment(db, rt, petition, author=author, body="A point.")
    second = sign_in_as(new_browser(), db, author)
    real = petition_pages._reader_context
    calls = {"n": 0}

    def flaky(db, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:  # the connection is lost mid-page: the transaction rolls back, expiring what it loaded
            db.rollback()
            raise RuntimeError("the database went away for a moment")
        return real(db, *args, **kwargs)

    monkeypatch.setattr(petition_pages, "_reader_context", flaky)
    assert first.get(f"/petitions/{petition.id}").status_code == 500
    answer = second.get(f"/petitions/{petition.id}")
    assert answer.status_code == 200, answer.text[-2000:]
    assert "A point." in answer.text


def _instances(value: Any, seen: set[int]) -> list[Any]:
    if id(value) in seen or isinstance(value, str | bytes | int | float | type(None)):
        return []
    seen.add(id(value))
    if isinstance(inspect(value, raiseerr=False), InstanceState):
        return [value]
    if isinstance(value, dict):
        return [found for item in value.values() for found in _instances(item, seen)]
    if isinstance(value, list | tuple | set | frozenset):
        return [found for item in value for found in _instances(item, seen)]
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return [found for name in value.__dataclass_fields__ for found in _instances(getattr(value, name), seen)]
    return []


def test_a_copy_is_kept_without_objects_of_the_request_that_made_it(db, rt, new_browser, monkeypatch) -> None:
    """Whatever the request does after keeping its copy (a failed commit rolls back and expires what it loaded),
    the copy's objects are no longer the request session's."""
    petition = factories.open_petition(db, rt, allow_anonymous=True)
    factories.comment(db, rt, petition, body="A point.")
    sign(db, rt, petition, "Sam Signer")
    reader = sign_in_as(new_browser(), db, factories.worker(db, name="Reader"))
    kept: list[Any] = []
    real_keep = page_cache.PageCopies.keep

    def keep(self, key, copy):
        kept.extend(_instances(copy.context, set()))
        attached.extend(instance for instance in kept if inspect(instance).session is not None)
        return real_keep(self, key, copy)

    attached: list[Any] = []
    monkeypatch.setattr(page_cache.PageCopies, "keep", keep)
    assert reader.get(f"/petitions/{petition.id}").status_code == 200
    assert kept  # the discussion's comments, the timeline's events...
    assert attached == []
