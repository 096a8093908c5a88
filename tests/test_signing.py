"""Signing, as a signer and an organizer meet it: pages and /api/v1, one signature per person, refusals."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.accounts import Role, User
from app.models.petitions import Petition
from tests import factories
from tests.conftest import Browser, count_rows, make_settings, make_user, sign_in_as

NewBrowser = Callable[[], Browser]


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    """The suite's settings, with overrides for the tests that parametrize `settings` indirectly."""
    return make_settings(database_url, **getattr(request, "param", {}))


# -- helpers --------------------------------------------------------------------------------------------------


def page_text(response: Any) -> str:
    return html.unescape(response.text)


def as_user(new_browser: NewBrowser, db: Session, user: User) -> Browser:
    return sign_in_as(new_browser(), db, user)


def counters(db: Session, petition: Petition) -> tuple[int, int]:
    db.expire_all()
    row = db.execute(
        text("SELECT signature_count, withdrawal_count FROM petitions WHERE id = :id"), {"id": petition.id}
    ).one()
    return int(row[0]), int(row[1])


def rows_of(db: Session, petition: Petition) -> list[dict[str, object]]:
    db.expire_all()
    result = db.execute(text("SELECT * FROM signatures WHERE petition_id = :id"), {"id": petition.id})
    return [dict(row._mapping) for row in result]


def sign_url(petition: Petition) -> str:
    return f"/petitions/{petition.id}/sign"


def api_url(petition: Petition | int) -> str:
    return f"/api/v1/petitions/{petition if isinstance(petition, int) else petition.id}/signature"


def names_section(page: str) -> str:
    """The public 'Recent signers who show their name' section, or '' when the page has none."""
    start = page.find("Recent signers who show their name")
    return "" if start < 0 else page[start : page.find("</section>", start)]


def assert_refused(
    response: Any,
    status: int,
    message: str,
    db: Session,
    petition: Petition | None,
    rows_before: int,
    count_before: int = 0,
) -> None:
    assert response.status_code == status, response.text
    body = response.json()["error"] if response.headers["content-type"].startswith("application/json") else None
    shown = " ".join([body["message"], *body["fields"].values()]) if body else page_text(response)
    assert message in shown
    assert count_rows(db, "signatures") == rows_before
    if petition is not None:
        assert counters(db, petition)[0] == count_before


# -- signing publicly and for organizers only -------------------------------------------------------------------


def test_signing_publicly_shows_the_name_counts_it_and_says_so_in_the_panel(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    petition = factories.open_petition(db, rt)
    signer = factories.worker(db, name="Priya Public")
    browser = as_user(new_browser, db, signer)
    visitor = new_browser()
    before = page_text(visitor.get(f"/petitions/{petition.id}"))
    assert "<strong>0</strong> signatures" in before and "Priya Public" not in before

    response = browser.post(sign_url(petition), {"visibility": "public"})

    assert response.status_code == 303 and response.headers["location"] == f"/petitions/{petition.id}#sign"
    assert counters(db, petition) == (1, 0)
    [row] = rows_of(db, petition)
    assert row["account_id"] == signer.id and row["visibility"] == "public" and row["public_name"] == "Priya Public"
    assert row["sealed_name"] is None and row["invalidation_id"] is None
    own = page_text(browser.get(f"/petitions/{petition.id}"))
    assert "Signed. Your name is shown with the petition." in own
    assert "You signed on 24 November 2026" in own and "with your name shown." in " ".join(own.split())
    assert f'action="/petitions/{petition.id}/withdraw"' in own
    public = page_text(visitor.get(f"/petitions/{petition.id}"))
    assert "<strong>1</strong> signature<" in public
    assert "Priya Public" in names_section(public)


def test_signing_for_organizers_only_keeps_the_name_sealed_and_off_the_public_page(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    creator = factories.worker(db, name="Olga Organizer")
    petition = factories.open_petition(db, rt, creator)
    signer = factories.worker(db, name="Quentin Quietly")
    browser = as_user(new_browser, db, signer)

    response = browser.post(sign_url(petition), {"visibility": "organizers"})

    assert response.status_code == 303
    own = " ".join(page_text(browser.get(f"/petitions/{petition.id}")).split())
    assert "Signed. Only the petition's organizers can see your name." in own
    assert "You signed on 24 November 2026 with your name visible only to the organizers." in own
    assert counters(db, petition) == (1, 0)
    for viewer in (as_user(new_browser, db, factories.worker(db)), new_browser()):
        page = page_text(viewer.get(f"/petitions/{petition.id}"))
        assert "<strong>1</strong> signature<" in page
        assert "Quentin Quietly" not in page and "Recent signers who show their name" not in page
    organizer = as_user(new_browser, db, creator)
    listing = page_text(organizer.get(f"/petitions/{petition.id}/signers"))
    assert "Quentin Quietly</td><td>organizers</td>" in listing
    assert "Quentin Quietly" not in page_text(organizer.get(f"/petitions/{petition.id}"))
    outsider = as_user(new_browser, db, factories.worker(db))
    refused = outsider.get(f"/petitions/{petition.id}/signers")
    assert refused.status_code == 403 and "Only this petition's organizers can do that." in page_text(refused)
    [row] = rows_of(db, petition)
    assert row["public_name"] is None and row["visibility"] == "organizers"
    assert isinstance(row["sealed_name"], bytes) and b"Quentin" not in row["sealed_name"]
    assert not any("Quentin" in str(value) for value in row.values()), "no plaintext of the name at rest"


# -- one signature per person ---------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["public", "organizers"])
def test_a_second_signature_is_refused_whatever_its_visibility(
    db: Session, rt: Runtime, new_browser: NewBrowser, second: str
) -> None:
    petition = factories.open_petition(db, rt)
    browser = as_user(new_browser, db, factories.worker(db))
    assert browser.post(sign_url(petition), {"visibility": "public"}).status_code == 303
    rows = count_rows(db, "signatures")

    again = browser.post(sign_url(petition), {"visibility": second})

    assert_refused(again, 409, "You have already signed this petition.", db, petition, rows, 1)
    through_api = browser.api("POST", api_url(petition), {"visibility": second})
    assert_refused(through_api, 409, "You have already signed this petition.", db, petition, rows, 1)
    assert through_api.json()["error"]["code"] == "conflict"
    [row] = rows_of(db, petition)
    assert row["visibility"] == "public"


# -- withdrawing and hiding one's name ------------------------------------------------------------------------


def test_withdrawing_uncounts_at_once_and_removes_the_row(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    signer = factories.worker(db, name="Wanda Withdrawn")
    browser = as_user(new_browser, db, signer)
    browser.post(sign_url(petition), {"visibility": "public"})
    assert counters(db, petition) == (1, 0)

    response = browser.post(f"/petitions/{petition.id}/withdraw")

    assert response.status_code == 303
    assert counters(db, petition) == (0, 1)
    assert rows_of(db, petition) == []
    page = page_text(browser.get(f"/petitions/{petition.id}"))
    assert "Your signature is withdrawn and no longer counted." in page
    assert "<strong>0</strong> signatures" in page and "Wanda Withdrawn" not in names_section(page)
    assert f'action="/petitions/{petition.id}/sign"' in page, "the sign form is offered again"

    again = browser.post(f"/petitions/{petition.id}/withdraw")
    assert again.status_code == 404 and "You have not signed this petition." in page_text(again)
    assert counters(db, petition) == (0, 1)


def test_withdrawing_on_a_closed_petition_is_refused(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    browser = as_user(new_browser, db, factories.worker(db))
    browser.post(sign_url(petition), {"visibility": "organizers"})
    factories.service.close(db=db, rt=rt, petition=petition, actor=None, reason="The organizers closed it.")
    db.commit()

    response = browser.post(f"/petitions/{petition.id}/withdraw")

    assert response.status_code == 409
    assert "Signatures can be withdrawn only while the petition is open." in page_text(response)
    assert counters(db, petition) == (1, 0) and len(rows_of(db, petition)) == 1
    assert browser.api("DELETE", api_url(petition)).status_code == 409


def test_hiding_my_name_moves_it_out_of_public_view_once(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    browser = as_user(new_browser, db, factories.worker(db, name="Hana Hidden"))
    browser.post(sign_url(petition), {"visibility": "public"})
    assert "Hana Hidden" in names_section(page_text(new_browser().get(f"/petitions/{petition.id}")))

    response = browser.post(f"/petitions/{petition.id}/hide-name")

    assert response.status_code == 303
    own = " ".join(page_text(browser.get(f"/petitions/{petition.id}")).split())
    assert "Your name is now visible only to the organizers." in own
    assert "with your name visible only to the organizers" in own and "/hide-name" not in own
    assert "Hana Hidden" not in page_text(new_browser().get(f"/petitions/{petition.id}"))
    listing = page_text(as_user(new_browser, db, creator).get(f"/petitions/{petition.id}/signers"))
    assert "Hana Hidden</td><td>organizers</td>" in listing
    [row] = rows_of(db, petition)
    assert row["public_name"] is None and row["visibility"] == "organizers"
    assert isinstance(row["sealed_name"], bytes) and b"Hana" not in row["sealed_name"]
    assert counters(db, petition) == (1, 0)

    again = browser.post(f"/petitions/{petition.id}/hide-name")
    assert again.status_code == 409 and "Your name is already visible only to the organizers." in page_text(again)


def test_hiding_a_name_without_a_signature_is_not_found(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    response = as_user(new_browser, db, factories.worker(db)).post(f"/petitions/{petition.id}/hide-name")
    assert response.status_code == 404 and "You have not signed this petition." in page_text(response)


# -- refusals: clear message, right status, nothing written ----------------------------------------------------


def test_a_closed_petition_takes_no_signature(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.closed_petition(db, rt)
    browser = as_user(new_browser, db, factories.worker(db))
    rows = count_rows(db, "signatures")
    message = "This petition has closed; it no longer takes signatures."
    assert_refused(browser.post(sign_url(petition), {"visibility": "public"}), 409, message, db, petition, rows)
    assert_refused(browser.api("POST", api_url(petition), {"visibility": "public"}), 409, message, db, petition, rows)
    assert f'action="/petitions/{petition.id}/sign"' not in browser.get(f"/petitions/{petition.id}").text


def test_a_petition_past_its_deadline_takes_no_signature(
    db: Session, rt: Runtime, clock: FrozenClock, new_browser: NewBrowser
) -> None:
    petition = factories.open_petition(db, rt, deadline="2026-12-01")
    browser = as_user(new_browser, db, factories.worker(db))
    clock.advance(timedelta(days=10))
    rows = count_rows(db, "signatures")
    assert_refused(
        browser.post(sign_url(petition), {"visibility": "public"}),
        409,
        "This petition has closed; it no longer takes signatures.",
        db,
        petition,
        rows,
    )


def test_an_unknown_petition_is_not_found(db: Session, new_browser: NewBrowser) -> None:
    browser = as_user(new_browser, db, factories.worker(db))
    rows = count_rows(db, "signatures")
    assert_refused(
        browser.post("/petitions/987654/sign", {"visibility": "public"}),
        404,
        "There is no such petition.",
        db,
        None,
        rows,
    )
    assert_refused(
        browser.api("POST", api_url(987654), {"visibility": "public"}),
        404,
        "There is no such petition.",
        db,
        None,
        rows,
    )


def test_an_unverified_account_cannot_sign(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    browser = as_user(new_browser, db, make_user(db, email="not-yet@example.org", verified=False))
    rows = count_rows(db, "signatures")
    message = "Please confirm your email address first"
    assert_refused(browser.post(sign_url(petition), {"visibility": "public"}), 403, message, db, petition, rows)
    assert_refused(browser.api("POST", api_url(petition), {"visibility": "public"}), 403, message, db, petition, rows)


def test_an_account_at_another_domain_cannot_sign(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    outsider = make_user(db, email="contractor@elsewhere.net", verified=True)
    browser = as_user(new_browser, db, outsider)
    rows = count_rows(db, "signatures")
    message = "Only members with an address at example.org or example.com can sign."
    assert_refused(browser.post(sign_url(petition), {"visibility": "public"}), 403, message, db, petition, rows)
    assert_refused(
        browser.api("POST", api_url(petition), {"visibility": "organizers"}), 403, message, db, petition, rows
    )


@pytest.mark.parametrize(
    ("visibility", "message"),
    [
        ("everyone", "Choose who may see your name."),
        ("anonymous", "Anonymous signing is not available on this petition."),
        ("", "Choose who may see your name."),
    ],
)
def test_a_visibility_that_is_not_offered_is_refused(
    db: Session, rt: Runtime, new_browser: NewBrowser, visibility: str, message: str
) -> None:
    petition = factories.open_petition(db, rt)
    browser = as_user(new_browser, db, factories.worker(db))
    rows = count_rows(db, "signatures")
    page = browser.post(sign_url(petition), {"visibility": visibility})
    assert_refused(page, 422, message, db, petition, rows)
    api = browser.api("POST", api_url(petition), {"visibility": visibility})
    assert_refused(api, 422, message, db, petition, rows)
    assert api.json()["error"]["fields"] == {"visibility": message}


def test_a_sign_form_without_its_csrf_token_is_refused(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    browser = as_user(new_browser, db, factories.worker(db))
    rows = count_rows(db, "signatures")
    message = "This form has expired or did not come from this site."
    assert_refused(
        browser.post(sign_url(petition), {"visibility": "public"}, csrf=False), 403, message, db, petition, rows
    )
    assert_refused(
        browser.post(sign_url(petition), {"visibility": "public", "csrf_token": "forged"}, csrf=False),
        403,
        message,
        db,
        petition,
        rows,
    )
    assert_refused(
        browser.api("POST", api_url(petition), {"visibility": "public"}, csrf=False), 403, message, db, petition, rows
    )


def test_signing_needs_an_account(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    visitor = new_browser()
    rows = count_rows(db, "signatures")
    assert_refused(
        visitor.api("POST", api_url(petition), {"visibility": "public"}), 401, "Please sign in", db, petition, rows
    )
    assert "Sign in to sign" in visitor.get(f"/petitions/{petition.id}").text


# -- departments and locations --------------------------------------------------------------------------------


@pytest.fixture
def signer_groups(db: Session, new_browser: NewBrowser) -> dict[str, int]:
    """Departments and locations an admin added on /admin/lists, by name."""
    admin = as_user(new_browser, db, make_user(db, email="lists-admin@example.org", roles=(Role.admin,)))
    for kind, name in (("department", "Engineering"), ("department", "Sales"), ("location", "Berlin")):
        response = admin.post(f"/admin/lists/{kind}", {"name": name})
        assert response.status_code == 303, response.text
    page = page_text(admin.get("/admin/lists"))
    assert all(name in page for name in ("Engineering", "Sales", "Berlin"))
    groups = admin.api("GET", "/api/v1/signer-groups").json()
    return {group["name"]: group["id"] for group in groups}


def test_a_petition_that_collects_attributes_offers_the_lists_and_stores_the_choice(
    db: Session, rt: Runtime, new_browser: NewBrowser, signer_groups: dict[str, int]
) -> None:
    petition = factories.open_petition(db, rt, collect_attributes=True)
    plain = factories.open_petition(db, rt, title="Publish the salary bands")
    browser = as_user(new_browser, db, factories.worker(db))
    page = browser.get(f"/petitions/{petition.id}").text
    assert '<select id="department" name="department">' in page and '<select id="location" name="location">' in page
    assert f'<option value="{signer_groups["Engineering"]}">Engineering</option>' in page
    assert f'<option value="{signer_groups["Berlin"]}">Berlin</option>' in page
    assert '<select id="department"' not in browser.get(f"/petitions/{plain.id}").text

    response = browser.post(
        sign_url(petition),
        {
            "visibility": "organizers",
            "department": str(signer_groups["Engineering"]),
            "location": str(signer_groups["Berlin"]),
        },
    )

    assert response.status_code == 303, response.text
    [row] = rows_of(db, petition)
    assert row["department_id"] == signer_groups["Engineering"] and row["location_id"] == signer_groups["Berlin"]
    other = as_user(new_browser, db, factories.worker(db))
    assert other.post(sign_url(petition), {"visibility": "public", "department": ""}).status_code == 303
    assert {(r["department_id"], r["location_id"]) for r in rows_of(db, petition)} == {
        (signer_groups["Engineering"], signer_groups["Berlin"]),
        (None, None),
    }
    api = as_user(new_browser, db, factories.worker(db))
    created = api.api("POST", api_url(petition), {"visibility": "public", "department_id": signer_groups["Sales"]})
    assert created.status_code == 201, created.text
    assert counters(db, petition) == (3, 0)
    assert signer_groups["Sales"] in {r["department_id"] for r in rows_of(db, petition)}


@pytest.mark.parametrize("choice", ["Berlin", "missing", "word"])
def test_a_department_not_on_the_list_is_refused(
    db: Session, rt: Runtime, new_browser: NewBrowser, signer_groups: dict[str, int], choice: str
) -> None:
    petition = factories.open_petition(db, rt, collect_attributes=True)
    browser = as_user(new_browser, db, factories.worker(db))
    raw = {"Berlin": str(signer_groups["Berlin"]), "missing": "987654", "word": "Engineering"}[choice]
    rows = count_rows(db, "signatures")
    message = "Choose a department from the list, or none."
    assert_refused(
        browser.post(sign_url(petition), {"visibility": "public", "department": raw}), 422, message, db, petition, rows
    )
    if raw.isdigit():
        assert_refused(
            browser.api("POST", api_url(petition), {"visibility": "public", "department_id": int(raw)}),
            422,
            message,
            db,
            petition,
            rows,
        )
    location = browser.post(sign_url(petition), {"visibility": "public", "location": str(signer_groups["Sales"])})
    assert_refused(location, 422, "Choose a location from the list, or none.", db, petition, rows)


@pytest.fixture
def lenient_browser(app: FastAPI) -> Iterator[Callable[[], Browser]]:
    """A browser whose client answers a server error with a 500 page instead of raising it into the test."""
    opened: list[TestClient] = []

    def open_browser() -> Browser:
        client = TestClient(app, base_url="http://testserver", follow_redirects=False, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return Browser(client)

    yield open_browser
    for client in opened:
        client.__exit__(None, None, None)


def test_a_department_given_as_a_superscript_digit_is_refused_not_a_server_error(
    db: Session, rt: Runtime, lenient_browser: Callable[[], Browser]
) -> None:
    petition = factories.open_petition(db, rt, collect_attributes=True)
    browser = sign_in_as(lenient_browser(), db, factories.worker(db))
    response = browser.post(sign_url(petition), {"visibility": "public", "department": "²"})
    assert response.status_code == 422
    assert "Choose a department from the list, or none." in page_text(response)


def test_a_department_id_out_of_range_is_refused_not_a_server_error(
    db: Session, rt: Runtime, lenient_browser: Callable[[], Browser]
) -> None:
    petition = factories.open_petition(db, rt, collect_attributes=True)
    browser = sign_in_as(lenient_browser(), db, factories.worker(db))
    rows = count_rows(db, "signatures")
    huge = "99999999999999999999"
    page = browser.post(sign_url(petition), {"visibility": "public", "department": huge})
    api = browser.api("POST", api_url(petition), {"visibility": "public", "department_id": int(huge)})
    assert (page.status_code, api.status_code) == (422, 422)
    assert count_rows(db, "signatures") == rows


def test_a_deactivated_entry_is_no_longer_offered_or_accepted(
    db: Session, rt: Runtime, new_browser: NewBrowser, signer_groups: dict[str, int]
) -> None:
    petition = factories.open_petition(db, rt, collect_attributes=True)
    admin = as_user(new_browser, db, make_user(db, email="toggler@example.org", roles=(Role.admin,)))
    sales = signer_groups["Sales"]

    response = admin.post(f"/admin/lists/department/{sales}/toggle")

    assert response.status_code == 303
    assert "“Sales” is no longer offered (existing uses stay)." in page_text(admin.get("/admin/lists"))
    browser = as_user(new_browser, db, factories.worker(db))
    assert "Sales" not in {group["name"] for group in browser.api("GET", "/api/v1/signer-groups").json()}
    assert f'<option value="{sales}">' not in browser.get(f"/petitions/{petition.id}").text
    rows = count_rows(db, "signatures")
    message = "Choose a department from the list, or none."
    assert_refused(
        browser.post(sign_url(petition), {"visibility": "public", "department": str(sales)}),
        422,
        message,
        db,
        petition,
        rows,
    )
    assert_refused(
        browser.api("POST", api_url(petition), {"visibility": "public", "department_id": sales}),
        422,
        message,
        db,
        petition,
        rows,
    )
    assert admin.post(f"/admin/lists/department/{sales}/toggle").status_code == 303
    assert browser.post(sign_url(petition), {"visibility": "public", "department": str(sales)}).status_code == 303


# -- the API --------------------------------------------------------------------------------------------------


def test_sign_read_and_withdraw_through_the_api(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petition = factories.open_petition(db, rt)
    browser = as_user(new_browser, db, factories.worker(db, name="Ada Api"))
    assert browser.api("GET", api_url(petition)).status_code == 404

    created = browser.api("POST", api_url(petition), {"visibility": "public", "notify_updates": True})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["petition_id"] == petition.id and body["visibility"] == "public" and body["notify_updates"] is True
    assert body["signature_count"] == 1 and body["signed_on"].startswith("2026-11-24T09:00")
    read = browser.api("GET", api_url(petition))
    assert read.status_code == 200 and read.json() == body
    assert counters(db, petition) == (1, 0)

    deleted = browser.api("DELETE", api_url(petition))

    assert deleted.status_code == 204 and deleted.content == b""
    assert counters(db, petition) == (0, 1) and rows_of(db, petition) == []
    missing = browser.api("GET", api_url(petition))
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "You have not signed this petition."
    again = browser.api("DELETE", api_url(petition))
    assert again.status_code == 404 and again.json()["error"]["message"] == "You have not signed this petition."
    assert counters(db, petition) == (0, 1)


def test_the_signers_api_is_for_organizers_only(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    as_user(new_browser, db, factories.worker(db, name="Paul Public")).api(
        "POST", api_url(petition), {"visibility": "public"}
    )
    as_user(new_browser, db, factories.worker(db, name="Olive Organizers")).api(
        "POST", api_url(petition), {"visibility": "organizers"}
    )
    url = f"/api/v1/petitions/{petition.id}/signers"

    listing = as_user(new_browser, db, creator).api("GET", url)

    assert listing.status_code == 200
    assert sorted(listing.json(), key=lambda s: s["name"]) == [
        {"name": "Olive Organizers", "visibility": "organizers"},
        {"name": "Paul Public", "visibility": "public"},
    ]
    refused = as_user(new_browser, db, factories.worker(db)).api("GET", url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert new_browser().api("GET", url).status_code == 401
    assert as_user(new_browser, db, creator).api("GET", "/api/v1/petitions/987654/signers").status_code == 404


def test_signer_groups_lists_active_departments_and_locations(
    db: Session, new_browser: NewBrowser, signer_groups: dict[str, int]
) -> None:
    groups = new_browser().api("GET", "/api/v1/signer-groups")
    assert groups.status_code == 200
    assert sorted((g["kind"], g["name"]) for g in groups.json()) == [
        ("department", "Engineering"),
        ("department", "Sales"),
        ("location", "Berlin"),
    ]


# -- the signer's own list ------------------------------------------------------------------------------------


def test_my_petitions_lists_what_i_signed_with_my_name(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    shown = factories.open_petition(db, rt, title="Publish the salary bands")
    sealed = factories.open_petition(db, rt, title="Fair pay for on-call nights")
    unsigned = factories.open_petition(db, rt, title="A petition I never signed")
    browser = as_user(new_browser, db, factories.worker(db))
    empty = page_text(browser.get("/petitions/mine"))
    assert "None yet." in empty
    browser.post(sign_url(shown), {"visibility": "public"})
    browser.post(sign_url(sealed), {"visibility": "organizers"})

    page = " ".join(page_text(browser.get("/petitions/mine")).split())

    assert "Petitions I signed" in page
    assert (
        f'<a href="/petitions/{shown.id}">Publish the salary bands</a>: signed 24 November 2026, name shown to everyone'
    ) in page
    assert (
        f'<a href="/petitions/{sealed.id}">Fair pay for on-call nights</a>: signed 24 November 2026, '
        "name shown to organizers only"
    ) in page
    assert unsigned.title not in page
    assert "Anonymous signatures are not linked to your account, so nobody, including you here, can list them." in page


# -- rate limit -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"rate_limit_sign": "2/minute"}], indirect=True, ids=["2-per-minute"])
def test_signing_is_rate_limited_per_account(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    petitions = [factories.open_petition(db, rt, title=f"Petition number {n}") for n in range(3)]
    browser = as_user(new_browser, db, factories.worker(db))
    assert browser.post(sign_url(petitions[0]), {"visibility": "public"}).status_code == 303
    assert browser.api("POST", api_url(petitions[1]), {"visibility": "organizers"}).status_code == 201
    rows = count_rows(db, "signatures")

    third = browser.post(sign_url(petitions[2]), {"visibility": "public"})

    assert_refused(third, 429, "Too many attempts. Please wait a little and try again.", db, petitions[2], rows)
    assert int(third.headers["Retry-After"]) >= 1
    through_api = browser.api("POST", api_url(petitions[2]), {"visibility": "public"})
    assert_refused(through_api, 429, "Too many attempts.", db, petitions[2], rows)
    assert through_api.json()["error"]["code"] == "rate_limited"
    other = as_user(new_browser, db, factories.worker(db))
    assert other.post(sign_url(petitions[2]), {"visibility": "public"}).status_code == 303, "limited per account"
    assert counters(db, petitions[2]) == (1, 0)
