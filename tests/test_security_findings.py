"""Issue #21's findings 2, 5, 7, 11 and 12, each held by the attacker's method written as code."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from app.main import MAX_BODY_BYTES
from app.models.accounts import Role
from app.models.petitions import Petition
from app.moderation import service as moderation
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, make_user, sign_in_as

pytestmark = pytest.mark.one_database

# ---------------------------------------------------------------------------------------------------------------
# Finding 2: a responder read petitions nobody outside their organizers and moderators may read.


def _private_petitions(db, rt) -> dict[str, Petition]:
    moderator = factories.moderator(db)
    hidden, rejected = (
        factories.open_petition(db, rt, title="Hidden: stop the badge cameras"),
        factories.petition_in_moderation(db, rt, title="Rejected: name the manager in 4B"),
    )
    moderation.hide(db=db, rt=rt, petition=hidden, moderator=moderator, reason="It names a colleague.")
    moderation.reject(db=db, rt=rt, petition=rejected, moderator=moderator, code="names_colleagues", note=None)
    db.commit()
    return {
        "draft": factories.draft_petition(db, rt, title="Draft: a private idea about the canteen"),
        "gathering sponsors": factories.petition_gathering_sponsors(db, rt, title="Sponsors: rota changes"),
        "in moderation": factories.petition_in_moderation(db, rt, title="In moderation: the parking plan"),
        "hidden": hidden,
        "privately rejected": rejected,
    }


def test_a_responder_cannot_read_a_petition_the_petition_page_withholds(browser: Browser, db, rt) -> None:
    responder = make_user(db, email="riley@example.org", name="Riley Responder", password=None, roles=(Role.responder,))
    sign_in_as(browser, db, responder)
    for state, petition in _private_petitions(db, rt).items():
        assert browser.get(f"/petitions/{petition.id}").status_code == 404, state
        page = browser.get(f"/petitions/{petition.id}/respond")
        assert page.status_code == 404, state
        assert petition.title not in page.text and petition.ask not in page.text, state
        posted = browser.post(
            f"/petitions/{petition.id}/respond", {"status": "accepted", "summary": "Yes.", "details": "Yes."}
        )
        assert posted.status_code == 404 and petition.title not in posted.text, state
        api = browser.api(
            "POST",
            f"/api/v1/petitions/{petition.id}/responses",
            {"status": "accepted", "summary": "Yes.", "details": "Yes.", "commitments": []},
        )
        assert api.status_code == 404, state
    open_one = factories.open_petition(db, rt, title="Open: a four-day week")
    assert browser.get(f"/petitions/{open_one.id}/respond").status_code == 200


# ---------------------------------------------------------------------------------------------------------------
# Finding 5: a moderator's own named comment under a petition that is not public answered 500.


def test_a_moderator_reads_and_moderates_their_own_comment_under_a_hidden_petition(
    browser: Browser,
    db,
    rt,
) -> None:
    moderator = factories.moderator(db)
    petition = factories.open_petition(db, rt)
    own = factories.comment(db, rt, petition, author=moderator, body="As a worker here: I agree.")
    reply = factories.comment(db, rt, petition, body="So do I.", parent=own)
    moderation.hide(db=db, rt=rt, petition=petition, moderator=factories.moderator(db), reason="Under review.")
    db.commit()
    sign_in_as(browser, db, moderator)
    for url in (
        f"/api/v1/comments/{own.id}",
        f"/comments/{own.id}",
        f"/api/v1/comments/{own.id}/replies",
        f"/api/v1/comments/{own.id}/history",
        f"/comments/{own.id}/history",
        f"/api/v1/comments/{reply.id}",
        f"/comments/{reply.id}",
    ):
        response = browser.get(url)
        assert response.status_code == 200, (url, response.status_code)
    # The discussion of a hidden petition is read-only: refused in words, not a crash.
    assert browser.api("POST", f"/api/v1/comments/{reply.id}/endorsement").status_code == 409
    assert browser.post(f"/comments/{reply.id}/endorse").status_code in (303, 409)
    hidden = browser.api("POST", f"/api/v1/moderation/comments/{own.id}/hide", {"reason": "Off topic."})
    assert hidden.status_code == 200, hidden.text
    restored = browser.post(f"/moderation/comments/{own.id}/restore")
    assert restored.status_code == 303, restored.text
    assert browser.post(f"/moderation/comments/{reply.id}/hide", {"reason": "Off topic."}).status_code == 303


# ---------------------------------------------------------------------------------------------------------------
# Finding 7: a name like "Zoe;=1+1;x" went out unquoted, and a spreadsheet that splits on semicolons ran it.

FORMULA = ("=", "+", "-", "@")


def _runnable_cells(text: str) -> list[str]:
    """What a spreadsheet could run, read the ways one might read the file: each usual separator, with the
    quotes honoured and ignored, leading spaces and quotes trimmed."""
    found = []
    for line in text.splitlines():
        for separator in (",", ";", "\t", "|"):
            fields = next(csv.reader([line], delimiter=separator), []) + line.split(separator)
            found += [field for field in fields if field.lstrip(' "').startswith(FORMULA)]
    return found


def test_csv_exports_quote_text_and_leave_no_formula_after_any_separator(db, rt, new_browser) -> None:
    organizer = factories.worker(db, name="Olga Organizer")
    petition = factories.open_petition(db, rt, creator=organizer, title='Fair pay;=HYPERLINK("http://x.test")')
    names = ["Zoe;=1+1;x", "Ann,+SUM(A1:A9)", "Bo\t@cmd", "Cy| -2+3", "=1+1", "Dee; =1", "Jean-Luc O'Neil"]
    for name in names:
        signatures.sign(
            db=db,
            rt=rt,
            petition_id=petition.id,
            user=factories.worker(db, name=name),
            visibility="public",
            notify_updates=False,
        )
    db.commit()
    browser = sign_in_as(new_browser(), db, organizer)
    signers = browser.api("POST", f"/api/v1/petitions/{petition.id}/exports", {"kind": "signers", "format": "csv"})
    tally = browser.api("POST", f"/api/v1/petitions/{petition.id}/exports", {"kind": "tally", "format": "csv"})
    assert signers.status_code == tally.status_code == 200
    for export in (signers.text, tally.text):
        assert _runnable_cells(export) == [], export
        # Every text cell is quoted, so a separator inside it stays inside it (every row starts with text).
        assert all(row.startswith('"') for row in export.splitlines()), export
    assert '"Zoe;\'=1+1;x","public","2026-11-24",' in signers.text
    assert f'"petition","id",{petition.id},"Fair pay;\'=HYPERLINK(""http://x.test"")"' in tally.text
    listed = sorted(row["name"] for row in csv.DictReader(io.StringIO(signers.text)))
    # Each name is kept whole and readable: an apostrophe before each would-be formula is all that is added.
    assert listed == sorted(
        ["Zoe;'=1+1;x", "Ann,'+SUM(A1:A9)", "Bo\t'@cmd", "Cy| '-2+3", "'=1+1", "Dee; '=1", "Jean-Luc O'Neil"]
    )
    admin = sign_in_as(new_browser(), db, factories.worker(db, roles=(Role.admin,)))
    organization = admin.get("/admin/report?format=csv")
    assert organization.status_code == 200 and organization.text.startswith('"section"')
    assert _runnable_cells(organization.text) == []


# ---------------------------------------------------------------------------------------------------------------
# Finding 12: a preview of a rule of one address said whether that colleague signed, and the history showed
# the first addresses of each rule.


def test_a_moderator_cannot_ask_whether_one_colleague_signed(db, rt, new_browser) -> None:
    petition = factories.open_petition(db, rt)
    target = make_user(db, email="quinn@example.org", name="Quinn Quiet", password=None)
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=target, visibility="organizers", notify_updates=False)
    others = [make_user(db, email=f"other{n}@example.org", name=f"Other {n}", password=None) for n in range(3)]
    # An address with no account, and an unconfirmed one, pad nothing: they could not have signed.
    make_user(db, email="pending@example.org", name="Not Confirmed", password=None, verified=False)
    db.commit()
    moderator = sign_in_as(new_browser(), db, factories.moderator(db))
    api = f"/api/v1/moderation/petitions/{petition.id}/invalidations"
    page = f"/moderation/petitions/{petition.id}/signatures"
    small_rules = [
        "quinn@example.org",
        "quinn@example.org\nnobody@example.org",
        "\n".join(
            [
                "quinn@example.org",
                "ghost1@example.org",
                "ghost2@example.org",
                "pending@example.org",
                *(other.email for other in others),
            ]
        ),
    ]
    for rule in small_rules:
        previewed = moderator.api("POST", f"{api}/preview", {"rule": rule})
        assert previewed.status_code == 422, (rule, previewed.text)
        assert "matched" not in previewed.text and "at least 5 accounts" in previewed.json()["error"]["fields"]["rule"]
        for expected in (0, 1):  # the stale-count refusal would have said the count too
            voided = moderator.api("POST", api, {"rule": rule, "reason": "Compromised.", "expected": expected})
            assert voided.status_code == 422 and "now matches" not in voided.text, voided.text
        shown = moderator.post(f"{page}/preview", {"rule": rule, "reason": "Compromised."})
        assert shown.status_code == 422 and "counted signature" not in shown.text
        assert "at least 5 accounts" in shown.text
    db.refresh(petition)
    assert petition.signature_count == 1
    # Five confirmed accounts: a count, and the record keeps no address.
    rule = "\n".join(["quinn@example.org", *(other.email for other in others), "@example.com"])
    make_user(db, email="sam@example.com", name="Sam Contractor", password=None)
    assert moderator.api("POST", f"{api}/preview", {"rule": rule}).json() == {"matched": 1}
    created = moderator.api("POST", api, {"rule": rule, "reason": "Compromised.", "expected": 1})
    assert created.status_code == 201 and created.json()["rule"] == "5 entries: @example.com, 4 addresses"
    history = moderator.get(page).text
    assert "voided 1 (5 entries: @example.com, 4 addresses)" in history
    assert "quinn" not in history and "other0" not in history


def test_the_history_shows_no_address_of_a_rule_recorded_before(db, rt, new_browser) -> None:
    from app.models.signatures import Invalidation

    petition = factories.open_petition(db, rt)
    moderator = factories.moderator(db)
    db.add(
        Invalidation(
            petition_id=petition.id,
            moderator_id=moderator.id,
            matched=2,
            reason="Compromised.",
            rule="3 entries: @example.com, ann.lee@example.org, bo@example.org",
            created_at=rt.clock.now(),
        )
    )
    db.commit()
    history = sign_in_as(new_browser(), db, moderator).get(f"/moderation/petitions/{petition.id}/signatures").text
    assert "(3 entries: @example.com, an address, an address)" in history
    assert "ann.lee" not in history and "bo@" not in history


# ---------------------------------------------------------------------------------------------------------------
# Finding 11: the HTTP edges.

SECURITY_HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "cache-control",
)


def test_a_body_too_large_is_refused_with_the_security_headers(browser: Browser) -> None:
    token = browser.csrf()
    huge = "x" * (MAX_BODY_BYTES + 1)
    sent: tuple[tuple[str, dict[str, Any]], ...] = (
        ("/signin", {"data": {"email": huge, "csrf_token": token}}),
        ("/api/v1/petitions", {"json": {"title": huge}, "headers": {"X-CSRF-Token": token}}),
    )
    for url, kwargs in sent:
        refused = browser.client.post(url, **kwargs)
        assert refused.status_code == 413, url
        assert all(name in refused.headers for name in SECURITY_HEADERS), (url, dict(refused.headers))


def test_head_on_a_page_answers_like_get_without_a_body(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    for url in (
        "/",
        "/petitions",
        f"/petitions/{petition.id}",
        "/signin",
        "/account",
        "/api/v1/petitions",
        f"/api/v1/petitions/{petition.id}",
        "/no/such/page",
    ):
        got, head = browser.get(url), browser.client.head(url)
        assert head.status_code == got.status_code, (url, head.status_code, got.status_code)
        assert head.content == b"", url
        assert head.headers.get("content-type") == got.headers.get("content-type"), url
        assert head.headers.get("location") == got.headers.get("location"), url


def test_a_method_not_allowed_names_every_allowed_method(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    comment = factories.comment(db, rt, petition)
    token = {"X-CSRF-Token": browser.csrf()}
    for method, url, allowed in (
        ("PUT", f"/api/v1/comments/{comment.id}", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("DELETE", f"/petitions/{petition.id}/respond", {"GET", "HEAD", "POST"}),
        ("PUT", "/api/v1/petitions/similar", {"GET", "HEAD"}),
        ("POST", "/api/v1/petitions/similar", {"GET", "HEAD"}),
    ):
        refused = browser.client.request(method, url, headers=token, json={})
        assert refused.status_code == 405, (method, url, refused.status_code, refused.text)
        assert set(refused.headers["allow"].split(", ")) == allowed, (method, url, refused.headers["allow"])
        assert all(name in refused.headers for name in SECURITY_HEADERS)


def test_booleans_are_strict(browser: Browser, db) -> None:
    sign_in_as(browser, db, factories.worker(db))
    for value in ("AAA", "", 2, None, [True]):
        refused = browser.api("PUT", "/api/v1/me/notifications", {"comment_replies": value})
        assert refused.status_code == 422 and "comment_replies" in refused.json()["error"]["fields"], (
            value,
            refused.text,
        )
    for value in (True, False):
        assert browser.api("PUT", "/api/v1/me/notifications", {"comment_replies": value}).json() == {
            "comment_replies": value
        }


def test_an_offset_out_of_range_is_a_plain_range_error(browser: Browser, db, rt) -> None:
    admin = factories.worker(db, roles=(Role.admin,))
    petition = factories.open_petition(db, rt, creator=admin)
    sign_in_as(browser, db, admin)
    for url in (f"/api/v1/petitions/{petition.id}/signers", "/api/v1/admin/accounts"):
        for offset in (2**63, 2**70, 10**30):
            refused = browser.get(url, params={"offset": offset})
            assert refused.status_code == 422, (url, offset, refused.status_code)
            message = refused.json()["error"]["fields"]["offset"]
            assert "NUL" not in message and "character" not in message and "Enter a number of at most" in message, (
                message
            )
