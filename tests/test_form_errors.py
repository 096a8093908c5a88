"""Every form is refused once, with every message at once, in plain words, and a summary that links to each field.

Issue #22: a wrong domain and a short password showed only the password; a deadline in the past was reported only
after the other fields passed; pydantic's own text ("Input should be ...") reached the response form and the rules.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from app.core.access import Access
from app.models.accounts import Role
from app.moderation import service as moderation
from app.petitions import service as petitions
from tests import ballot_helpers, factories
from tests.conftest import Browser, count_rows, make_user, sign_in_as
from tests.test_authorization_matrix import EXPECTED

pytestmark = pytest.mark.one_database

RAW_VALIDATION = ("Input should", "Value error", "Traceback", "validation error for")


def summary_links(html: str) -> list[str]:
    """The fields the error summary links to, after checking it is there, first in its form's flow, and focusable."""
    match = re.search(
        r'<div class="error-summary" role="alert" tabindex="-1" autofocus[^>]*>(.*?)</div>', html, re.DOTALL
    )
    assert match, "the refused form has an error summary that can take focus"
    return re.findall(r'<a href="#([^"]+)"', match.group(1))


def assert_marked(html: str, field_id: str) -> None:
    """The field's control says it is in error and names its message."""
    control = re.search(rf'<(input|select|textarea)\b[^>]*\bid="{re.escape(field_id)}"[^>]*>', html)
    assert control, f"no control with id {field_id}"
    assert 'aria-invalid="true"' in control.group(0), control.group(0)
    described = re.search(r'aria-describedby="([^"]*)"', control.group(0))
    assert described and f"{field_id}-error" in described.group(1).split(), control.group(0)
    assert f'id="{field_id}-error"' in html


def assert_plain(html: str) -> None:
    for text in RAW_VALIDATION:
        assert text not in html, text


def test_sign_up_reports_a_wrong_domain_and_a_short_password_together(browser: Browser, db) -> None:
    response = browser.post("/signup", {"email": "alex@elsewhere.test", "display_name": "", "password": "short"})
    assert response.status_code == 422
    html = response.text
    assert "Use your work address at example.org or example.com." in html
    assert "Use at least 10 characters." in html
    assert "This is required." in html
    assert summary_links(html) == ["email", "display_name", "password"]
    for field in ("email", "display_name", "password"):
        assert_marked(html, field)
    assert_plain(html)
    assert count_rows(db, "users") == 0


def test_a_draft_with_a_past_deadline_is_refused_with_the_other_errors(browser: Browser, db, rt) -> None:
    sign_in_as(browser, db, factories.worker(db))
    yesterday = (rt.clock.now().date()).isoformat()  # today is not after today
    response = browser.post(
        "/petitions", {"title": "", "ask": "Stop it.", "background": "", "category": "nothing", "deadline": yesterday}
    )
    assert response.status_code == 422
    html = response.text
    assert "Choose a date after today, or leave it empty." in html
    assert "Choose one of the listed categories." in html
    assert html.count("This is required.") >= 2
    assert set(summary_links(html)) == {"title", "background", "category", "deadline"}
    for field in ("title", "background", "category", "deadline"):
        assert_marked(html, field)
    assert_plain(html)
    assert count_rows(db, "petitions") == 0


def test_a_draft_edit_reports_a_past_deadline_with_the_other_errors(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.draft_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    response = browser.post(
        f"/petitions/{petition.id}/edit",
        {
            "title": "",
            "ask": petition.ask,
            "background": petition.background,
            "category": petition.category.slug,
            "deadline": "2020-01-01",
        },
    )
    assert response.status_code == 422
    assert set(summary_links(response.text)) == {"title", "deadline"}
    assert "Choose a date after today, or leave it empty." in response.text
    assert_plain(response.text)


def test_a_date_that_is_not_a_date_is_refused_in_words(browser: Browser, db) -> None:
    sign_in_as(browser, db, factories.worker(db))
    response = browser.post(
        "/petitions", {"title": "T", "ask": "A", "background": "B", "category": "workplace", "deadline": "next tuesday"}
    )
    assert response.status_code == 422 and "Enter a date like 2027-03-31." in response.text
    assert summary_links(response.text) == ["deadline"]
    assert_plain(response.text)


def test_the_response_form_reports_every_field_in_words(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    responder = make_user(db, email="responder@example.org", roles=(Role.responder,))
    sign_in_as(browser, db, responder)
    # The first commitment row is left empty: the second row's messages still point at the second row.
    response = browser.post(
        f"/petitions/{petition.id}/respond",
        {
            "status": "we_love_it",
            "summary": "",
            "details": "",
            "commitments.1.text": "Stop recording",
            "commitments.1.owner": "",
            "commitments.1.due_on": "2020-01-01",
            "commitments.2.text": "Publish the contract",
            "commitments.2.owner": "CTO",
            "commitments.2.due_on": "2020-01-01",
        },
    )
    assert response.status_code == 422
    html = response.text
    assert "Choose one of the options." in html
    assert 'id="commitments.1.due_on-error">Choose a due date from today on.' in html
    assert 'id="commitments.2.due_on-error">Choose a due date from today on.' in html
    assert set(summary_links(html)) == {
        "status",
        "summary",
        "details",
        "commitments.1.owner",
        "commitments.1.due_on",
        "commitments.2.due_on",
    }
    for field in (
        "status",
        "summary",
        "details",
        "commitments.1.owner",
        "commitments.1.due_on",
        "commitments.2.due_on",
    ):
        assert_marked(html, field)
    assert_plain(html)
    assert count_rows(db, "petition_responses") == 0


def test_the_rules_page_names_each_range_in_words(browser: Browser, db) -> None:
    sign_in_as(browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    response = browser.post(
        "/admin/settings",
        {
            "allowed_email_domains": "example.org",
            "sponsors_required": "51",
            "response_threshold": "ten",
            "response_days": "0",
            "escalation_threshold": "5",
        },
    )
    assert response.status_code == 422
    html = response.text
    assert "Enter a number from 0 to 50." in html
    assert "Enter a number from 1 to 365." in html
    assert "Enter a number from 1 to 10,000,000." in html
    assert set(summary_links(html)) == {"sponsors_required", "response_threshold", "response_days"}
    for field in ("sponsors_required", "response_threshold", "response_days"):
        assert_marked(html, field)
    assert_plain(html)


# -- every form route ------------------------------------------------------------------------------------------------


PAGE_POSTS = sorted(
    key
    for key, access in EXPECTED.items()
    if key[0] == "POST" and not key[1].startswith("/api/") and access is not Access.development
)
# The persona who may use each access level; an organizer is a worker who created the petition the path names.
PERSONA = {
    Access.public: "signed_out",
    Access.account: "worker",
    Access.worker: "worker",
    Access.organizer: "organizer",
    Access.responder: "responder",
    Access.pulse: "responder",  # a responder or an admin puts a poll to every member (issue #25)
    Access.moderator: "moderator",
    Access.admin: "admin",
}
NONSENSE = {
    "email": "not an address",
    "password": "x",
    "code": "abc",
    "display_name": "\x07",
    "title": "\n",
    "ask": "",
    "background": "",
    "category": "no-such-category",
    "deadline": "31/02/2020",
    "note": "",
    "status": "maybe",
    "summary": "",
    "details": "",
    "commitments.0.due_on": "soon",
    "body": "",
    "reason": "",
    "answers": "perhaps",
    "role": "emperor",
    "sponsors_required": "-1",
    "response_threshold": "1e9",
    "response_days": "forever",
    "escalation_threshold": "",
    "allowed_email_domains": "not a domain",
    "visibility": "everyone",
    "kind": "nothing",
    "entries": "zzz",
    "notification_email": "nowhere",
    "name": "",
    "parent_id": "x",
}


def _ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


@pytest.mark.one_database
@pytest.mark.parametrize("values", [{}, NONSENSE], ids=["empty", "nonsense"])
@pytest.mark.parametrize("key", PAGE_POSTS, ids=lambda key: key[1])
def test_every_form_route_refuses_bad_input_in_words(
    key: tuple[str, str], values: dict[str, str], browser: Browser, db, rt
) -> None:
    """An empty or nonsense submission to any page's form: a 4xx in words, never a 500 or pydantic's text, and where
    the form is shown again, a summary whose every link leads to a control on the page."""
    _, path = key
    persona = PERSONA[EXPECTED[key]]
    user = None
    if persona != "signed_out":
        roles = (Role(persona),) if persona in ("responder", "moderator", "admin") else ()
        user = make_user(db, email=f"{persona}@example.org", password=None, roles=roles)
        sign_in_as(browser, db, user)
    petition = (
        factories.open_petition(db, rt, creator=user if persona == "organizer" else None)
        if "{petition_id}" in path or "{comment_id}" in path
        else None
    )
    comment = factories.comment(db, rt, petition, author=user) if "{comment_id}" in path and user and petition else None
    target = make_user(db, email="target@example.org", password=None) if "{user_id}" in path else None
    # A poll put to every member by someone else: the persona may read it, and closing it is refused in words.
    ballot = ballot_helpers.pulse_ballot(db, rt) if "{ballot_id}" in path else None
    url = path.format(
        token="t" * 43,
        user_id=target.id if target else 0,
        role="moderator",
        petition_id=petition.id if petition else 0,
        kind="department",
        item_id=1,
        commitment_id=1,
        response_id=1,
        comment_id=comment.id if comment else 0,
        ballot_id=ballot.id if ballot else 0,
    )
    response = browser.post(url, values)
    assert response.status_code < 500, response.text[:500]
    if response.status_code in (302, 303):
        response = browser.get(response.headers["location"])
        assert response.status_code < 500
    assert_plain(response.text)
    # A form shown again with its fields marked: the summary leads to each of them. (Forms of hidden fields and
    # buttons, like the export's, can only be sent empty by hand; they get the error page, in words.)
    if 'aria-invalid="true"' in response.text or "field-error" in response.text or "error-summary" in response.text:
        links = summary_links(response.text)
        assert set(links) <= _ids(response.text), f"{path}: the summary links to {links}, not all on the page"


# -- authors, sponsors and moderators ---------------------------------------------------------------------------------


def test_a_rejected_petition_and_its_discussion_say_rejected_not_closed(browser: Browser, db, rt) -> None:
    petition = factories.petition_in_moderation(db, rt)
    moderation.reject(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), code="duplicate", note=None)
    db.commit()
    sign_in_as(browser, db, factories.worker(db))
    for url in (f"/petitions/{petition.id}", f"/petitions/{petition.id}/comments"):
        page = browser.get(url)
        assert page.status_code == 200, url
        text = re.sub(r"<[^>]+>", " ", page.text)
        assert "rejected" in text.lower(), url
        assert not re.search(r"\bclosed\b", text, re.IGNORECASE), (
            url,
            re.findall(r".{60}\bclosed\b.{60}", text, re.IGNORECASE | re.DOTALL),
        )


# -- the other forms: several wrong fields, every message in one round -------------------------------------------


def _as(browser: Browser, db):
    user = factories.worker(db)
    sign_in_as(browser, db, user)
    return user


@pytest.mark.parametrize("case", ["idea", "correction", "update", "signin", "verify", "flag"])
def test_each_form_shows_all_its_errors_at_once(case: str, browser: Browser, db, rt) -> None:
    if case == "idea":
        _as(browser, db)
        url, data, expected = "/petitions/new", {"title": "", "ask": ""}, {"title", "ask"}
    elif case == "correction":
        creator = _as(browser, db)
        petition = factories.open_petition(db, rt, creator)
        url = f"/petitions/{petition.id}/correct"
        data, expected = (
            {"title": "", "ask": petition.ask, "background": "", "note": ""},
            {"title", "background", "note"},
        )
    elif case == "update":
        creator = _as(browser, db)
        petition = factories.open_petition(db, rt, creator)
        url, data, expected = f"/petitions/{petition.id}/updates", {"title": "", "body": ""}, {"title", "body"}
    elif case == "signin":
        url, data, expected = "/signin", {"email": "", "password": ""}, {"email", "password"}
    elif case == "verify":
        url, data, expected = "/verify", {"email": "", "code": "12"}, {"email", "code"}
    else:
        petition = factories.open_petition(db, rt)
        comment = factories.comment(db, rt, petition)
        _as(browser, db)
        url = f"/comments/{comment.id}/flag"
        data, expected = {"reason": "boring", "note": "x" * 2000}, {"reason", "note"}
    response = browser.post(url, data)
    assert response.status_code == 422, (case, response.status_code)
    assert set(summary_links(response.text)) == expected
    for field in expected:
        assert_marked(response.text, field)
    assert_plain(response.text)


def test_the_draft_shows_the_deadline_and_anonymity_chosen(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    sign_in_as(browser, db, creator)
    form = browser.post("/petitions/new", {"title": "Quiet rooms", "ask": "Give us quiet rooms."})
    assert re.search(
        r'<input id="allow_anonymous" name="allow_anonymous" type="checkbox" value="1" checked', form.text
    ), "anonymity starts allowed"
    deadline = (rt.clock.now().date().replace(day=1) + timedelta(days=70)).isoformat()
    created = browser.post(
        "/petitions",
        {
            "title": "Quiet rooms",
            "ask": "Give us quiet rooms.",
            "background": "Open plan is loud.",
            "category": "workplace",
            "deadline": deadline,
            "allow_anonymous": "1",
        },
    )
    assert created.status_code == 303, created.text
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", browser.get(created.headers["location"]).text))
    shown = date.fromisoformat(deadline)
    assert f"Deadline Signatures until {shown.day:02d} {shown:%B} {shown.year}" in page
    assert "Anonymity Colleagues may sign and comment anonymously" in page
    assert "Freeze the text and get sponsors" in page and "Fix the text" not in page


def test_the_sponsor_and_versions_pages_keep_the_paragraphs_and_markdown_of_why(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    background = "First reason, with **emphasis**.\r\n\r\nSecond reason.\r\n\r\n<script>alert(1)</script>"
    petition = factories.petition_gathering_sponsors(db, rt, creator, background=background)
    sign_in_as(browser, db, creator)
    for url in (petitions.sponsor_url(rt=rt, petition=petition), f"/petitions/{petition.id}/versions"):
        page = browser.get(url)
        assert page.status_code == 200, (url, page.status_code)
        assert "<p>First reason, with <strong>emphasis</strong>.</p>" in page.text, url
        assert "<p>Second reason.</p>" in page.text, url
        assert "<script>alert(1)</script>" not in page.text, url


def test_moderators_and_update_readers_see_the_paragraphs_typed(browser: Browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_in_moderation(db, rt, creator, background="One.\r\n\r\nTwo, *emphasised*.")
    sign_in_as(browser, db, make_user(db, email="mod@example.org", roles=(Role.moderator,)))
    review = browser.get(f"/moderation/petitions/{petition.id}")
    assert "<p>One.</p>" in review.text and "<p>Two, <em>emphasised</em>.</p>" in review.text

    opened = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    assert (
        browser.post(
            f"/petitions/{opened.id}/updates", {"title": "News", "body": "First part.\r\n\r\nSecond part."}
        ).status_code
        == 303
    )
    page = browser.get(f"/petitions/{opened.id}").text
    assert "<p>First part.</p><p>Second part.</p>" in page


def test_a_form_answered_with_the_error_page_names_no_field_by_its_program_name(browser: Browser, db, rt) -> None:
    """A sign panel sent without its choice (only by hand: the page always checks one) gets the error page in words."""
    petition = factories.open_petition(db, rt)
    sign_in_as(browser, db, factories.worker(db))
    response = browser.post(f"/petitions/{petition.id}/sign", {"visibility": "everyone"})
    assert response.status_code == 422
    assert "<li>Choose who may see your name.</li>" in response.text
    assert "visibility" not in re.sub(r"<[^>]+>", " ", response.text)
    assert_plain(response.text)
