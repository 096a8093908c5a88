"""The home page explains itself: what needs attention now (trending, awaiting an answer, closing soon), and
where to go next when a list is empty."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.core.runtime import Runtime
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, sign_in_as

pytestmark = pytest.mark.one_database

SECTIONS = ("trending", "awaiting", "closing")


def sections(html: str) -> dict[str, str]:
    """Each list's part of the page, by its key."""
    found = dict(re.findall(r'<section aria-labelledby="home-(\w+)">(.*?)</section>', html, re.DOTALL))
    assert set(found) == set(SECTIONS), found.keys()
    return found


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_every_empty_list_says_why_and_what_to_do_next(browser: Browser, db: Session) -> None:
    signed_out = sections(browser.get("/").text)
    for key in SECTIONS:
        assert f'data-empty="{key}"' in signed_out[key], key
    assert "Nobody has signed a petition in the last 24 hours" in text(signed_out["trending"])
    assert 'href="/petitions"' in signed_out["trending"] and 'href="/signup"' in signed_out["trending"]
    assert "reaches 100 signatures appears here until leadership responds" in text(signed_out["awaiting"])
    assert 'href="/scoreboard"' in signed_out["awaiting"]
    assert "No open petition has a deadline coming up" in text(signed_out["closing"])

    sign_in_as(browser, db, factories.worker(db))
    signed_in = sections(browser.get("/").text)
    assert 'href="/petitions/new"' in signed_in["trending"] and 'href="/signup"' not in signed_in["trending"]


def test_petitions_that_need_attention_are_listed_where_they_belong(
    browser: Browser, db: Session, rt: Runtime, clock
) -> None:
    quiet = factories.open_petition(db, rt, title="A quiet petition nobody signed today")
    closing = factories.open_petition(
        db, rt, title="A petition with a deadline", deadline=(clock.now() + timedelta(days=5)).date()
    )
    awaiting = factories.open_petition(db, rt, title="A petition leadership must answer")
    # As if opened when the organization asked for one signature: its first starts leadership's clock.
    awaiting.response_threshold = 1
    db.commit()
    signatures.sign(
        db=db, rt=rt, petition_id=awaiting.id, user=factories.worker(db), visibility="public", notify_updates=False
    )
    db.commit()

    listed = {key: text(part) for key, part in sections(browser.get("/").text).items()}

    assert awaiting.title in listed["trending"] and "1 in the last 24 hours" in listed["trending"]
    assert awaiting.title in listed["awaiting"] and "response due 08 Dec 2026" in listed["awaiting"]
    assert closing.title in listed["closing"] and "closes 29 Nov 2026" in listed["closing"]
    # Open but unsigned today, without a deadline, not at its threshold: nothing asks for attention.
    assert not any(quiet.title in part for part in listed.values())
    assert closing.title not in listed["trending"]
