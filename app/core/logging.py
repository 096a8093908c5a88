"""Structured (JSON lines) logs that carry no personal data."""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from app.core.clock import to_the_hour

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# Passed as `extra` by what logs about a cookie-less (anonymous) request: the line keeps only the hour, like the
# anonymous signatures themselves, so it cannot be matched with a token's issuance or a batch by its time.
# True dates the line by the hour it is written in; a datetime, by that hour (HourlyRequests, written later).
COARSE_TIME = "coarse_time"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        coarse = getattr(record, COARSE_TIME, False)
        if coarse:
            moment = (coarse if isinstance(coarse, datetime) else moment).replace(minute=0, second=0, microsecond=0)
        entry: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k != COARSE_TIME})
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and where it happened, not its message: database errors quote the
            # parameters of the failed statement, which may be addresses or names.
            entry["error_type"] = record.exc_info[0].__name__
            entry["stack"] = traceback.format_tb(record.exc_info[2])[-5:]
        return json.dumps(entry, default=str)


class HourlyRequests:
    """Requests counted through the hour and logged once it is over: one line per route and status, dated by
    that hour, with how many there were and how long they took.

    A line dated by the hour but written in turn among lines dated to the millisecond is dated by its
    neighbours all the same, so these requests get no line of their own. The tally is written by the first
    request of a later hour (`release_past`, before every request's line) or when the server stops
    (`release`); a process killed outright loses at most one hour of it. Its size is bounded by the number of
    routes and statuses, however busy the hour.
    """

    def __init__(self, logger: logging.Logger, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.logger = logger
        self.now = now
        self._hour: datetime | None = None
        self._tally: dict[tuple[str, str, int], list[float]] = {}  # (method, route, status): count, total, max
        self._lock = threading.Lock()

    def add(self, *, method: str, route: str, status: int, duration_ms: float) -> None:
        self.release_past()
        with self._lock:
            self._hour = self._hour or to_the_hour(self.now())
            counts = self._tally.setdefault((method, route, status), [0, 0.0, 0.0])
            counts[0] += 1
            counts[1] += duration_ms
            counts[2] = max(counts[2], duration_ms)

    def release_past(self) -> None:
        """Write the tally if its hour is over."""
        if self._hour is not None and self._hour != to_the_hour(self.now()):
            self.release()

    def release(self) -> None:
        """Write the tally now, whatever its hour."""
        with self._lock:
            hour, tally = self._hour, self._tally
            self._hour, self._tally = None, {}
        for (method, route, status), (count, total, longest) in sorted(tally.items()):
            self.logger.info(
                "requests in the hour",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "count": int(count),
                    "duration_ms_mean": round(total / count, 1),
                    "duration_ms_max": longest,
                    COARSE_TIME: hour,
                },
            )


class HeldByTheHour(logging.StreamHandler):
    """Writes lines at once, except those dated by the hour (COARSE_TIME), which wait until their hour is over.

    A line dated by the hour but written at once among lines dated to the millisecond (a signed-in request's) is
    dated by its neighbours all the same, and so is the moment it was written, whatever its own time says: a
    failed anonymous batch, or a cookie-less request's error, would be placed within milliseconds (found in
    review). Held lines are written by the first line of a later hour, or when the server stops (`write_held`), in
    an order of their own (logger, level, event), one line per kind with how many there were: neither their
    order within the hour nor their number in memory says more than the hour. A process killed outright loses
    at most one hour of them, as it loses the hour's request counts (HourlyRequests)."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self.now = now
        self._held: dict[tuple[datetime, str, int, str], tuple[logging.LogRecord, int]] = {}
        self._holding = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        current = to_the_hour(self.now())
        self._release(before=current)
        coarse = getattr(record, COARSE_TIME, False)
        if coarse:
            hour = to_the_hour(coarse) if isinstance(coarse, datetime) else current
            if hour >= current:
                key = (hour, record.name, record.levelno, record.getMessage())
                with self._holding:
                    first, count = self._held.get(key, (record, 0))
                    self._held[key] = (first, count + 1)
                return
        super().emit(record)

    def write_held(self) -> None:
        """Write every held line now, whatever its hour (the server is stopping). (Not `release`: that is the
        handler's lock.)"""
        self._release(before=None)

    def _release(self, *, before: datetime | None) -> None:
        with self._holding:
            due = sorted(key for key in self._held if before is None or key[0] < before)
            lines = [self._held.pop(key) for key in due]
        for record, count in lines:
            if count > 1:
                record.repeated = count
            super().emit(record)

    def close(self) -> None:
        self.write_held()
        super().close()


def release_held_lines() -> None:
    """Write the lines the server's handler holds for their hour (at shutdown)."""
    for handler in logging.getLogger("undersigned").handlers:
        if isinstance(handler, HeldByTheHour):
            handler.write_held()


def configure_logging(level: str = "INFO") -> None:
    handler = HeldByTheHour()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("undersigned")
    release_held_lines()  # a handler replaced (a second app in one process) writes what it held first
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
