"""A signature refused because the deadline passed leaves the petition closed: the refusal rolls back its unit of
work, and must not take the closing on read with it (review finding, issue #23)."""

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests import factories
from tests.conftest import sign_in_as


@pytest.mark.parametrize("via", ["page", "api"])
def test_a_refused_signature_past_the_deadline_leaves_the_petition_closed(db, rt, new_browser, via) -> None:
    petition = factories.open_petition(db, rt)
    db.execute(
        text("UPDATE petitions SET deadline = :deadline WHERE id = :id"),
        {"deadline": rt.clock.now() - timedelta(days=1), "id": petition.id},
    )
    db.commit()
    browser = sign_in_as(new_browser(), db, factories.worker(db, name="Late Signer"))
    if via == "page":
        answer = browser.post(f"/petitions/{petition.id}/sign", {"visibility": "public"})
        assert answer.status_code in (303, 409)  # refused: back to the page with the reason, or the form's error
    else:
        answer = browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", json={"visibility": "public"})
        assert answer.status_code == 409
    db.expire_all()
    assert db.execute(text("SELECT state FROM petitions WHERE id = :id"), {"id": petition.id}).scalar_one() == "closed"
    assert (
        db.execute(text("SELECT count(*) FROM signatures WHERE petition_id = :id"), {"id": petition.id}).scalar() == 0
    )
