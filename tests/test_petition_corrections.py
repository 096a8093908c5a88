"""The text people sign is frozen once anyone has; corrections make a new version and signers are told."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models.petitions import PetitionVersion
from app.petitions import service
from app.petitions.schemas import PetitionCorrection
from tests import factories
from tests.conftest import (
    Browser,
    outbox,
    sign_in_as,
)
from tests.petition_steps import (
    fan_out,
    reload,
    rows,
    sign,
    visitor,
)

pytestmark = pytest.mark.one_database


def test_correcting_a_signed_petition_creates_a_new_version_and_tells_signers(new_browser, db, rt, connection) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator, background="Recording every keystroke is intrusive.")
    signer = factories.worker(db, name="Sigrid Signer")
    signing = visitor(new_browser, db, signer).post(f"/petitions/{petition.id}/sign", {"visibility": "public"})
    assert signing.status_code == 303 and reload(db, petition).signature_count == 1
    organizer = visitor(new_browser, db, creator)

    response = organizer.post(
        f"/petitions/{petition.id}/correct",
        {
            "title": petition.title,
            "ask": petition.ask,
            "background": "Recording every keystroke is unlawful.",
            "decision_maker": petition.decision_maker or "",
            "note": "We checked the law.",
        },
    )

    assert response.status_code == 303 and response.headers["location"] == f"/petitions/{petition.id}/versions"
    fresh = reload(db, petition)
    assert (fresh.version, fresh.background) == (2, "Recording every keystroke is unlawful.")
    versions = db.scalars(
        select(PetitionVersion).where(PetitionVersion.petition_id == petition.id).order_by(PetitionVersion.number)
    ).all()
    assert [(v.number, v.background, v.note) for v in versions] == [
        (1, "Recording every keystroke is intrusive.", None),
        (2, "Recording every keystroke is unlawful.", "We checked the law."),
    ]
    assert versions[0].content_hash != versions[1].content_hash
    history = visitor(new_browser, db).get(f"/petitions/{petition.id}/versions")
    assert history.status_code == 200
    assert "<del>intrusive.</del><ins>unlawful.</ins>" in history.text
    assert "Recording every keystroke is intrusive." in history.text  # version 1 stays readable in full
    assert "What changed:</strong> We checked the law." in history.text
    assert outbox(db, signer.email) == [], "told by the worker, not in the organizer's request"
    assert fan_out(connection, rt) == 1
    mail = outbox(db, signer.email)
    assert [message.subject for message in mail] == ["A petition you signed or follow was corrected"]
    assert "now version 2" in mail[0].body_text and "We checked the law." in mail[0].body_text
    assert "new_version" in [
        item["kind"] for item in visitor(new_browser, db).api("GET", f"/api/v1/petitions/{petition.id}/timeline").json()
    ]


def test_a_correction_tells_signers_who_hid_their_name_but_not_anonymous_ones(db, rt, connection) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    named = sign(db, rt, petition, visibility="organizers")
    follower = factories.worker(db)
    service.follow(db=db, rt=rt, petition=petition, user=follower)
    db.commit()

    service.correct_text(
        db=db,
        rt=rt,
        petition=petition,
        actor=creator,
        form=PetitionCorrection(
            title=petition.title,
            ask=petition.ask + " Now.",
            background=petition.background,
            decision_maker=petition.decision_maker,
            note="Sharper ask.",
        ),
    )
    db.commit()
    assert fan_out(connection, rt) == 2

    told = {message.to_address for message in outbox(db) if message.template == "petition_corrected"}
    assert told == {named.email, follower.email}


def test_a_correction_that_changes_nothing_is_refused(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign(db, rt, petition)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(
        f"/petitions/{petition.id}/correct",
        {
            "title": petition.title,
            "ask": petition.ask,
            "background": petition.background,
            "decision_maker": petition.decision_maker or "",
            "note": "Nothing really.",
        },
    )

    assert response.status_code == 422 and "Change the text, or cancel." in response.text
    assert reload(db, petition).version == 1
    assert rows(db) == before


def test_a_correction_needs_a_note(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    before = rows(db)

    response = browser.post(
        f"/petitions/{petition.id}/correct",
        {"title": "Changed", "ask": petition.ask, "background": petition.background, "note": ""},
    )

    assert response.status_code == 422 and 'id="note-error">This is required.' in response.text
    assert rows(db) == before


def test_only_an_open_petition_can_be_corrected(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.closed_petition(db, rt, creator)
    sign_in_as(browser, db, creator)

    response = browser.api(
        "POST",
        f"/api/v1/petitions/{petition.id}/corrections",
        {"title": "Changed", "ask": petition.ask, "background": petition.background, "note": "Late fix."},
    )

    assert response.status_code == 409 and reload(db, petition).version == 1
