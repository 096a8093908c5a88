"""Errors answer in plain words with the right status: pages for people, one JSON shape for the API."""

import re

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core.access import route_table
from app.core.database import get_db
from app.core.routing import UnitOfWorkRoute
from app.main import create_app
from app.routes.policy import Anyone
from tests import factories
from tests.conftest import (
    PASSWORD,
    Browser,
    build_test_app,
    capture_logs,
    count_rows,
    dated_by_the_hour,
    make_settings,
    make_user,
    sign_in_as,
)


def test_unknown_page_is_a_404_page(browser: Browser) -> None:
    response = browser.get("/no/such/page")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "We could not find that page" in response.text and '<html lang="en">' in response.text


def test_unknown_api_path_is_json(browser: Browser) -> None:
    response = browser.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": response.json()["error"]["message"], "fields": {}}
    }


def test_api_validation_errors_name_the_fields(browser: Browser, db) -> None:
    response = browser.api("POST", "/api/v1/accounts", {"email": "a@example.org", "display_name": "", "password": "x"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert set(error["fields"]) == {"display_name", "password"}
    assert count_rows(db, "users") == 0


def test_api_refuses_state_changes_without_the_csrf_header(browser: Browser, db) -> None:
    response = browser.api(
        "POST",
        "/api/v1/accounts",
        {"email": "a@example.org", "display_name": "A", "password": "long enough password"},
        csrf=False,
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert count_rows(db, "users") == 0


def test_oversized_body_is_refused_before_it_is_read(browser: Browser, db) -> None:
    response = browser.post(
        "/signup", {"email": "a@example.org", "display_name": "x" * 2_000_000, "password": "long enough password"}
    )
    assert response.status_code == 413
    assert "too much to send" in response.text
    assert count_rows(db, "users") == 0


def test_unexpected_error_shows_a_plain_page_without_a_trace(settings) -> None:
    app = create_app(settings)  # its own: the route added here must not reach the apps other tests share
    router = APIRouter()
    address = "alex-example.org".replace("-", "@")

    @router.get("/boom")
    def boom(anyone: Anyone) -> None:
        raise RuntimeError("secret detail " + address)

    app.include_router(router)
    with capture_logs() as server_logs, TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "Traceback" not in response.text and "secret detail" not in response.text
    logged = server_logs.text
    assert "unhandled error" in logged and "RuntimeError" in logged
    assert address not in logged, "exception messages stay out of the logs"


@pytest.mark.parametrize(
    ("error", "says", "retry_after"),
    [
        (OperationalError("SELECT 1", {}, Exception("connection refused")), "cannot be reached right now", "30"),
        (PoolTimeout("QueuePool limit of size 4 overflow 0 reached, connection timed out"), "very busy right now", "5"),
    ],
    ids=["database outage", "no free connection"],
)
def test_database_trouble_is_a_503_page_never_a_500(app, error: Exception, says: str, retry_after: str) -> None:
    def broken_db():
        raise error
        yield  # pragma: no cover

    app.dependency_overrides[get_db] = broken_db
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/signin")
        api = client.get("/api/v1/me")
    assert page.status_code == 503 and says in page.text
    assert page.headers["retry-after"] == retry_after
    assert api.status_code == 503 and api.json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize(
    "error",
    [OperationalError("SELECT 1", {}, Exception("connection refused")), PoolTimeout("QueuePool limit reached")],
    ids=["database outage", "no free connection"],
)
def test_database_trouble_on_a_route_logged_by_the_hour_is_logged_by_the_hour(app, error: Exception) -> None:
    """The wallet's requests are logged by the hour (app/core/web.py): its line about an outage must not date
    one to the millisecond either (found in review). A sign-in page's line keeps its millisecond."""

    def broken_db():
        raise error
        yield  # pragma: no cover

    app.dependency_overrides[get_db] = broken_db
    with capture_logs() as server_logs, TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/wallet").status_code == 503
        wallet = server_logs.entries("error")
        server_logs.lines.clear()
        assert client.get("/signin").status_code == 503
        signin = server_logs.entries("error")
    assert len(wallet) == 1 and dated_by_the_hour(wallet[0]), wallet
    assert len(signin) == 1 and not dated_by_the_hour(signin[0]), signin


def test_every_route_ends_its_unit_of_work_in_the_handlers_thread(app) -> None:
    """A router created without the route class would commit only after the response is validated, holding
    its connection (and its locks) across hops to worker threads; see app/core/routing.py."""
    handlers, _others = route_table(app)
    assert handlers
    assert {path for (_method, path), route in handlers.items() if not isinstance(route, UnitOfWorkRoute)} == set()


def test_health_and_readiness(browser: Browser) -> None:
    assert browser.get("/healthz").json() == {"status": "ok"}
    assert browser.get("/readyz").json() == {"status": "ok", "database": "ok"}


def test_security_headers_on_every_page(browser: Browser) -> None:
    response = browser.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers, "HSTS only outside development"


def test_production_cookies_are_secure_and_pages_send_hsts(database_url, connection, clock, db) -> None:
    """What the external scan cannot see over plain HTTP (wapiti reports the cookies it is handed as not Secure,
    docs/security.md): in production the server sets every cookie with a value Secure, HttpOnly and SameSite=Lax."""
    settings = make_settings(
        database_url,
        environment="production",
        smtp_host="127.0.0.1",
        blind_key_bits=3072,
        anonymous_batch_seconds=300,
        secret_key="p" * 40,
    )
    app = build_test_app(settings, connection, clock)
    make_user(db, email="ana@example.org")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        signed_in = client.post(
            "/signin", data={"email": "ana@example.org", "password": PASSWORD, "csrf_token": token.group(1)}
        )
    assert signed_in.status_code == 303
    set_cookies = page.headers.get_list("set-cookie") + signed_in.headers.get_list("set-cookie")
    # Deletions (the sign-up's pending address, Max-Age=0) carry no value to protect.
    cookies = {header.split("=", 1)[0]: header for header in set_cookies if "max-age=0" not in header.lower()}
    # Over https the CSRF seed cookie carries the __Host- prefix (issue #21).
    assert {"__Host-undersigned_csrf", "undersigned_session", "undersigned_flash"} <= set(cookies)
    for header in cookies.values():
        attributes = {part.strip().lower() for part in header.split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax"} <= attributes, header
    assert page.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


def test_a_nul_character_in_the_forms_the_scan_found_is_refused_not_a_500(browser: Browser, db, rt) -> None:
    """Found by wapiti on PostgreSQL (docs/security.md): its file payloads end in a NUL character, which
    PostgreSQL refuses in text, and the category filter, the flag form and the discussion form answered 500.
    SQLite stores the character; PostgreSQL's refusal is a 422 that writes nothing."""
    petition = factories.open_petition(db, rt)
    comment = factories.comment(db, rt, petition)
    sign_in_as(browser, db, factories.worker(db))
    before = count_rows(db, "comments"), count_rows(db, "comment_flags")
    answers = [
        browser.get("/petitions", params={"category": "/e\x00", "sort": "most_signed"}),
        browser.post(f"/comments/{comment.id}/flag", {"reason": "other", "note": "/e\x00"}),
        browser.post(f"/petitions/{petition.id}/comments", {"body": "/e\x00"}),
    ]
    if db.get_bind().dialect.name == "postgresql":
        assert [answer.status_code for answer in answers] == [422, 422, 422]
        assert (count_rows(db, "comments"), count_rows(db, "comment_flags")) == before
    else:
        assert [answer.status_code for answer in answers] == [200, 303, 303]


def test_an_id_beyond_the_database_range_is_a_clear_422_not_an_overflow(browser: Browser) -> None:
    # Found by schemathesis: a huge id reached the database driver and overflowed (SQLite) or failed (PostgreSQL).
    huge = 2**70
    page = browser.get(f"/petitions/{huge}")
    api = browser.get(f"/api/v1/petitions/{huge}/responses")
    assert page.status_code == 422 and api.status_code == 422
    assert "petition_id" in api.json()["error"]["fields"]
