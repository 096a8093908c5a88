"""Petition cards in lists: the ask's excerpt, progress toward the next threshold, a "Responded" or "Response
overdue" badge and the deadline. (Their queries: tests/test_petition_discovery.py counts them for 3 and 25 petitions.)"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests import factories
from tests.conftest import Browser

pytestmark = pytest.mark.one_database


def card(page: str, title: str) -> str:
    match = re.search(
        r'<article class="card">(?:(?!</article>).)*?' + re.escape(title) + r".*?</article>", page, re.DOTALL
    )
    assert match, title
    return match.group(0)


def test_cards_show_the_excerpt_progress_badges_and_deadline(browser: Browser, db, rt, clock) -> None:
    long_ask = "Publish the salary bands for every role, " + "in every department and every office, " * 8
    waiting = factories.open_petition(db, rt, title="Waiting for leadership", ask=long_ask, deadline=date(2026, 12, 20))
    answered = factories.open_petition(db, rt, title="Answered by leadership")
    late = factories.open_petition(db, rt, title="Leadership is late")
    now = clock.now()
    answered.response_due_at, answered.first_response_at = now + timedelta(days=3), now - timedelta(days=1)
    late.response_due_at = now - timedelta(hours=1)
    waiting.response_due_at = now + timedelta(hours=1)
    waiting.signature_count, waiting.response_threshold, waiting.escalation_threshold = 40, 100, 500
    late.signature_count, late.response_threshold, late.escalation_threshold = 120, 100, 500
    db.commit()

    page = browser.get("/petitions").text
    first = card(page, "Waiting for leadership")
    assert "Publish the salary bands for every role, in every department" in first and "..." in first
    assert long_ask.strip() not in first  # an excerpt, not the whole ask
    assert 'max="100" value="40"' in first and "60 more to reach 100, when leadership must respond" in first
    assert "closes 20 Dec 2026" in first
    assert "Responded" not in first and "overdue" not in first  # due in an hour: not yet late

    assert "tag-responded" in card(page, "Answered by leadership")
    third = card(page, "Leadership is late")
    assert "Response overdue" in third and "Responded" not in third
    # Past the response threshold: the next one is the escalation.
    assert "380 more to reach 500, when the petition calls for a public answer" in third
