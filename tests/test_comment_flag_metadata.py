"""A flag is private and named (review finding, issue #23): an open page's poll must not learn the moment one was
made, or refused, when the page shows nothing new; and the flag's row, tied to the flagger, keeps the hour."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from tests import factories
from tests.conftest import sign_in_as


def test_a_flag_moves_the_page_version_only_when_the_comment_folds(db, rt, clock, new_browser) -> None:
    petition = factories.open_petition(db, rt)
    comment = factories.comment(db, rt, petition, body="Name and shame.")
    db.commit()
    reader = new_browser()
    url = f"/api/v1/petitions/{petition.id}"
    tag = reader.get(url).headers["ETag"]
    before = rt.page_versions.get(petition.id)
    flaggers = [sign_in_as(new_browser(), db, factories.worker(db)) for _ in range(rt.settings.comment_collapse_flags)]

    # A flag that folds nothing, and the same flagger's refused second one: nothing the page shows changes.
    assert flaggers[0].api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "spam"}).status_code == 201
    assert flaggers[0].api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "spam"}).status_code == 409
    assert flaggers[1].api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "other"}).status_code == 422
    assert rt.page_versions.get(petition.id) == before
    assert reader.get(url, headers={"If-None-Match": tag}).status_code == 304

    # The flag that folds the comment away shows on the page: the version moves.
    for flagger in flaggers[1:]:
        assert flagger.post(f"/comments/{comment.id}/flag", {"reason": "harassment"}).status_code == 303
    assert rt.page_versions.get(petition.id) != before
    assert reader.get(url, headers={"If-None-Match": tag}).status_code == 200
    assert reader.get(f"/api/v1/petitions/{petition.id}/comments").json()["items"][0]["collapsed"] is True


def test_a_flag_keeps_the_hour_only(db, rt, clock, new_browser) -> None:
    petition = factories.open_petition(db, rt)
    comment = factories.comment(db, rt, petition)
    db.commit()
    clock.advance(timedelta(minutes=17, seconds=23))
    flagger = sign_in_as(new_browser(), db, factories.worker(db))
    assert flagger.api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "spam"}).status_code == 201
    created = db.execute(
        text("SELECT created_at FROM comment_flags WHERE comment_id = :id"), {"id": comment.id}
    ).scalar_one()
    if isinstance(created, str):  # SQLite
        created = created.replace("T", " ")
        assert created[14:19] == "00:00", created
    else:
        assert (created.minute, created.second, created.microsecond) == (0, 0, 0)
