"""The attacker reads the server's log stream in the order it was written (as a log collector does, stamping
each line when it arrives): a line dated by the hour (COARSE_TIME: a failed anonymous batch, an error on a
cookie-less route) must not be placed in time by the millisecond lines written around it. The server's handler
(app/core/logging.HeldByTheHour) holds such lines until their hour is over (found in review)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.core.logging import COARSE_TIME, HeldByTheHour, JsonFormatter

pytestmark = pytest.mark.one_database

NINE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Server:
    """The server's handler on its own logger and stream, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = NINE + timedelta(minutes=24)
        self.stream = io.StringIO()
        self.handler = HeldByTheHour(now=lambda: self.now)
        self.handler.setStream(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.logger = logging.getLogger("undersigned.test_log_line_order")
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def named(self, event: str) -> None:
        """A signed-in person's request: its line to the millisecond, written at once."""
        self.logger.info(event)

    def anonymous(self, event: str) -> None:
        self.logger.error(event, extra={COARSE_TIME: True})

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.logger.removeHandler(running.handler)


def bracketing(lines: list[dict[str, object]], event: str) -> tuple[object, object]:
    """The attacker's method: the times of the millisecond lines just before and just after the line."""
    index = next(i for i, line in enumerate(lines) if line["event"] == event)
    before = [line["time"] for line in lines[:index] if not str(line["time"]).endswith(":00:00.000+00:00")]
    after = [line["time"] for line in lines[index + 1 :] if not str(line["time"]).endswith(":00:00.000+00:00")]
    return (before[-1] if before else None, after[0] if after else None)


def test_a_line_dated_by_the_hour_waits_until_the_hour_is_over(server: Server) -> None:
    server.named("GET /account")
    server.anonymous("writing a batch of anonymous signatures failed")
    server.named("GET /account")
    assert [line["event"] for line in server.lines()] == ["GET /account", "GET /account"]  # held
    server.now = NINE + timedelta(hours=1, seconds=3)
    server.named("GET /petitions")  # the first line of the next hour writes the held one first
    lines = server.lines()
    assert [line["event"] for line in lines] == [
        "GET /account",
        "GET /account",
        "writing a batch of anonymous signatures failed",
        "GET /petitions",
    ]
    held = lines[2]
    assert str(held["time"]).endswith(":00:00.000+00:00")
    # Bracketed only by the last line of its hour and the first of the next: it says no more than its hour.
    before, _after = bracketing(lines, "writing a batch of anonymous signatures failed")
    assert before == lines[1]["time"]


def test_held_lines_are_one_per_kind_in_an_order_of_their_own(server: Server) -> None:
    for event in ("unhandled error", "writing a batch of anonymous signatures failed", "unhandled error"):
        server.anonymous(event)
    server.handler.write_held()
    lines = server.lines()
    assert [(line["event"], line.get("repeated")) for line in lines] == [
        ("unhandled error", 2),
        ("writing a batch of anonymous signatures failed", None),
    ]


def test_a_past_hours_line_is_written_at_once(server: Server) -> None:
    server.logger.info("requests in the hour", extra={COARSE_TIME: NINE - timedelta(hours=1)})
    assert [line["event"] for line in server.lines()] == ["requests in the hour"]


def test_the_server_writes_what_it_held_when_it_stops(app) -> None:
    from fastapi.testclient import TestClient

    handler = next(h for h in logging.getLogger("undersigned").handlers if isinstance(h, HeldByTheHour))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        with TestClient(app):
            logging.getLogger("undersigned.anonymous").error("a held line", extra={COARSE_TIME: True})
            assert "a held line" not in stream.getvalue()
        assert "a held line" in stream.getvalue()
    finally:
        if previous is not None:
            handler.setStream(previous)
