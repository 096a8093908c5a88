"""Requests to routes that touch anonymous features are logged by the hour: counted, and the counts written
once the hour is over.

The wallet's requests, the published keys, the petition page and the discussions were logged to the
millisecond, in turn with every other request: next to a sign-in's line they named who collected a token or
posted a comment. A line each dated by the hour would still be dated by its place among the others, so they
get none: one line per route and status for the whole hour. Cookie-less routes still write no line at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.core import web
from app.core.logging import HourlyRequests
from app.core.runtime import Runtime
from tests import factories
from tests.conftest import Browser, LogCapture, capture_logs, served_routes, sign_in_as
from tests.test_branding import admin, png, save

__all__ = ["admin"]  # the fixture, used by name below

NewBrowser = Callable[[], Browser]

ROUTES, _ = served_routes()


# Every route of the app that touches anonymous features, by the rule the brief states.
def touches_anonymous_features(path: str) -> bool:
    return (
        path.startswith(
            (
                "/api/v1/wallet",
                "/api/v1/anonymous",
                "/api/v1/petitions/{petition_id}/log",
                "/wallet",
                "/organization/",
                "/static/",
                "/unsubscribe/",
                "/polls/{ballot_id}",
                "/api/v1/ballots/{ballot_id}",
            )
        )
        or "/anonymous" in path
        or "/anonymity" in path
        or "/comments" in path
        or path
        in (
            "/petitions/{petition_id}",
            "/api/v1/petitions/{petition_id}",
            "/petitions/{petition_id}/live",
            "/petitions/{petition_id}/qr.svg",
            "/petitions/{petition_id}/poster.pdf",
        )
    )


@pytest.mark.parametrize("path", sorted({path for _method, path in ROUTES}))
def test_every_route_touching_anonymous_features_is_logged_by_the_hour(path: str) -> None:
    assert web.logs_by_the_hour(path) == touches_anonymous_features(path)


def test_the_list_covers_the_wallet_keys_signatures_comments_and_the_petition_page() -> None:
    for path in (
        "/api/v1/wallet",
        "/api/v1/wallet/tokens",
        "/api/v1/anonymous/keys",
        "/api/v1/petitions/{petition_id}/anonymous-signatures",
        "/petitions/{petition_id}",
        "/petitions/{petition_id}/comments",
        "/comments/{comment_id}/edit",
        "/api/v1/petitions/{petition_id}/comments",
        "/polls/{ballot_id}",
        "/api/v1/ballots/{ballot_id}/log/leaves",
    ):
        assert web.logs_by_the_hour(path), path
    for path in (
        "/organization/style.css",
        "/static/wallet.js",
        "/petitions/{petition_id}/qr.svg",
        "/unsubscribe/{token}",
        "/favicon.ico",
    ):
        assert web.logs_by_the_hour(path), path
    for path in ("/healthz", "/signin", "/petitions", "/api/v1/petitions/{petition_id}/signature"):
        assert not web.logs_by_the_hour(path), path


def entries(capture: LogCapture) -> list[dict[str, Any]]:
    """The lines our loggers wrote (the capture also holds other libraries' debug lines)."""
    return [entry for entry in map(json.loads, capture.lines) if str(entry["logger"]).startswith("undersigned")]


@pytest.fixture
def tally_released() -> None:
    """Nothing another test left in the tally is written into this one's capture."""
    web.hourly_requests.release()


def test_requests_are_counted_then_logged_once_with_the_hour_only(
    new_browser: NewBrowser, db: Session, rt: Runtime, tally_released: None
) -> None:
    petition = factories.open_petition(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    with capture_logs() as capture:
        member.get("/api/v1/wallet")
        member.get(f"/petitions/{petition.id}")
        member.get(f"/petitions/{petition.id}")
        member.get(f"/petitions/{petition.id}/comments")
        new_browser().get("/api/v1/anonymous/keys")
        member.get("/healthz")
        # Only the unrelated request is written at once (with its millisecond).
        assert [entry["route"] for entry in entries(capture)] == ["/healthz"]
        web.hourly_requests.release()
        written = entries(capture)[1:]
    assert {(entry["route"], entry["count"]) for entry in written} == {
        ("/api/v1/anonymous/keys", 1),
        ("/api/v1/wallet", 1),
        ("/petitions/{petition_id}", 2),
        ("/petitions/{petition_id}/comments", 1),
    }
    for entry in written:
        assert str(entry["time"]).endswith(":00:00.000+00:00"), entry
        assert entry["event"] == "requests in the hour" and entry["status"] == 200 and entry["method"] == "GET"
        assert "coarse_time" not in entry and "duration_ms" not in entry and entry["duration_ms_max"] >= 0


def test_an_hour_over_is_written_by_the_next_request_and_memory_stays_bounded() -> None:
    now = [datetime(2026, 11, 24, 9, 59, 59, tzinfo=UTC)]
    tally = HourlyRequests(web.request_logger, now=lambda: now[0])
    with capture_logs() as capture:
        for number in range(1000):
            tally.add(method="GET", route="/petitions/{petition_id}", status=200, duration_ms=float(number % 7))
        tally.add(method="POST", route="/api/v1/wallet/tokens", status=429, duration_ms=3.0)
        assert len(tally._tally) == 2, "one counter per route and status, however many requests"
        tally.release_past()
        assert entries(capture) == [], "the hour is not over"
        now[0] += timedelta(seconds=2)
        tally.release_past()
        written = entries(capture)
    assert [(entry["route"], entry["status"], entry["count"]) for entry in written] == [
        ("/petitions/{petition_id}", 200, 1000),
        ("/api/v1/wallet/tokens", 429, 1),
    ]
    assert {entry["time"] for entry in written} == {"2026-11-24T09:00:00.000+00:00"}
    assert written[0]["duration_ms_max"] == 6.0 and written[0]["duration_ms_mean"] == 3.0
    assert tally._tally == {}


def test_the_tally_is_written_when_the_server_stops(app, tally_released: None) -> None:
    from fastapi.testclient import TestClient

    with capture_logs() as capture:
        with TestClient(app) as client:
            client.get("/api/v1/anonymous/keys")
            assert entries(capture) == []
        assert [(entry["route"], entry["count"]) for entry in entries(capture)] == [("/api/v1/anonymous/keys", 1)]


def test_what_a_petition_page_loads_is_logged_by_the_hour_too(
    admin, new_browser: NewBrowser, db: Session, rt: Runtime, tally_released: None
) -> None:
    """Adversary: the petition page itself writes no line, but a log reader looks for the lines of what it
    loads (the organization's stylesheet and logo, scripts, the QR code, the favicon browsers ask for), each to
    the millisecond, and so dates the visit of a worker about to sign anonymously. None may be written at once."""
    import re

    assert save(admin, name="Acme", accent="#0b5cad", logo=("logo.png", png(), "image/png")).status_code in (200, 303)
    petition = factories.open_petition(db, rt)
    reader = sign_in_as(new_browser(), db, factories.worker(db))
    with capture_logs() as capture:
        page = reader.get(f"/petitions/{petition.id}").text
        loaded = {
            path.replace("&amp;", "&")
            for path in re.findall(r'(?:src|href)="(/[^"]*)"', page)
            if re.search(r'<(?:link|script|img)\b[^>]*(?:src|href)="' + re.escape(path) + '"', page)
        }
        assert {"/static/style.css", f"/petitions/{petition.id}/qr.svg"} <= {path.split("?")[0] for path in loaded}
        assert any(path.startswith("/organization/style.css") for path in loaded), loaded
        assert any(path.startswith("/organization/logo") for path in loaded), loaded
        for path in sorted(loaded) + ["/favicon.ico", f"/petitions/{petition.id}/poster.pdf", "/unsubscribe/x"]:
            reader.get(path)
        assert [(entry["route"], entry["time"]) for entry in entries(capture)] == []
        web.hourly_requests.release()
        written = entries(capture)
    assert {entry["route"] for entry in written} >= {
        "/organization/style.css",
        "/organization/logo",
        "static",
        "/petitions/{petition_id}/qr.svg",
        "/unsubscribe/{token}",
    }
    assert all(str(entry["time"]).endswith(":00:00.000+00:00") for entry in written), written


def test_cookieless_routes_still_write_no_line(client, tally_released: None) -> None:
    with capture_logs() as capture:
        client.cookies.clear()
        client.post("/api/v1/anonymous/signatures", json={})
        web.hourly_requests.release()
    assert entries(capture) == []
