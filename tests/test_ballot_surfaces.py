"""A poll's surfaces beyond answering (issue #25): its result as a PDF, the mail that tells its audience it opened,
the page where its author edits it, and the limits on its cookie-less routes."""

from __future__ import annotations

import subprocess

import pytest

from app.models.accounts import Role
from app.models.ballots import BallotKind
from app.moderation import service as moderation
from tests import factories
from tests.ballot_helpers import petition_ballot
from tests.conftest import Browser, sign_in_as
from tests.test_ballot_pages import answer, close, pulse


@pytest.fixture
def responder(db):
    return factories.worker(db, name="Riley Responder", roles=(Role.responder,))


def pdf_text(body: bytes, tmp_path) -> str:
    """The PDF's text as pdftotext reads it (poppler), words joined by single spaces."""
    path = tmp_path / "result.pdf"
    path.write_bytes(body)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True)
    return " ".join(out.stdout.split())


# -- the PDF ----------------------------------------------------------------------------------------------------


def test_the_pdf_suppresses_as_the_csv_and_json_do(browser: Browser, db, rt, clock, responder, tmp_path) -> None:
    k = rt.settings.min_group_size
    ballot = pulse(db, rt, responder, options=["Pay rise", "Shorter hours", "Remote work"])
    answer(db, ballot, *([[0]] * (k - 1)))
    sign_in_as(browser, db, factories.worker(db))
    page = browser.get(f"/polls/{ballot.id}").text
    assert f'href="/polls/{ballot.id}/results.pdf"' in page

    def pdf() -> str:
        got = browser.get(f"/polls/{ballot.id}/results.pdf")
        assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == f'attachment; filename="poll-{ballot.id}-results.pdf"'
        assert got.headers["cache-control"] == "no-store"
        return pdf_text(got.content, tmp_path)

    text = pdf()  # open: kept until the close
    assert "Which should leadership fix first?" in text and "Results are shown once the poll closes" in text
    assert f"Answers counted {k - 1}" in text and "Shorter hours" in text  # the counter and options, as the page
    assert "What " not in text and "%" not in text and "Share" not in text

    close(clock, rt, ballot)
    text = pdf()  # closed, one answer short of k
    assert "Not enough answers yet" in text and "%" not in text and "Shorter hours" in text

    answer(db, ballot, [1])  # the k-th, written by the last batch
    text = pdf()
    assert f"What {k} people answered" in text
    assert f"Pay rise (most) {k - 1} {round(100 * (k - 1) / k)}%" in text
    assert f"Shorter hours 1 {round(100 / k)}%" in text and "Remote work 0 0%" in text
    assert f"undersigned verify {rt.settings.base_url.rstrip('/')}/polls/{ballot.id}" in text


def test_a_ranked_pdf_prints_every_round(browser: Browser, db, rt, clock, responder, tmp_path) -> None:
    ballot = pulse(db, rt, responder, kind=BallotKind.ranked, max_choices=3)
    answer(db, ballot, [0, 1], [0, 2], [1, 0], [1, 0], [2, 1], [2, 0])
    close(clock, rt, ballot)
    text = pdf_text(browser.get(f"/polls/{ballot.id}/results.pdf").content, tmp_path)
    assert "wins, by instant runoff over 6 ranked answers" in text
    assert "Round Option Answers Note" in text and "dropped" in text and "Exhausted" in text


def test_the_pdf_is_for_whoever_may_read_the_poll(browser: Browser, new_browser, db, rt) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    ballot = petition_ballot(db, rt, petition, organizer, question="Strike?", options=["Yes", "No"])
    reader = sign_in_as(new_browser(), db, factories.worker(db))
    assert reader.get(f"/polls/{ballot.id}/results.pdf").status_code == 200
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Names a colleague.")
    db.commit()
    assert reader.get(f"/polls/{ballot.id}/results.pdf").status_code == 404
    assert reader.get(f"/polls/{ballot.id + 1000}/results.pdf").status_code == 404
    assert reader.get(f"/polls/{ballot.id}/results.xlsx").status_code == 404
