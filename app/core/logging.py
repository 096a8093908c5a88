"""Structured (JSON lines) logs that carry no personal data."""

from __future__ import annotations

import json
import logging
import random
import threading
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from app.core.clock import to_the_hour

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# Passed as `extra` by what logs about a cookie-less (anonymous) request: the line keeps only the hour, like the
# anonymous signatures themselves, so it cannot be matched with a token's issuance or a batch by its time.
# True dates the line by the hour it is written in; a datetime, by that hour (HourlyLines, written later).
COARSE_TIME = "coarse_time"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        coarse = getattr(record, COARSE_TIME, False)
        if coarse:
            moment = (coarse if isinstance(coarse, datetime) else moment).replace(minute=0, second=0, microsecond=0)
        entry = {
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


class HourlyLines:
    """Log lines held until their hour is over, then written together in random order, dated by that hour.

    A line dated by the hour but written in turn among lines dated to the millisecond is dated by its
    neighbours all the same: held back and shuffled, its place in the log says no more than its time. Held
    lines are written by the first line of a later hour (`release_past`, before every request's line) or
    when the server stops (`release`); a process killed outright loses at most one hour of them.
    """

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.now = now
        self._hour: datetime | None = None
        self._held: list[tuple[logging.Logger, str, dict[str, object]]] = []
        self._lock = threading.Lock()

    def add(self, logger: logging.Logger, event: str, fields: Mapping[str, object]) -> None:
        self.release_past()
        with self._lock:
            self._hour = self._hour or to_the_hour(self.now())
            self._held.append((logger, event, dict(fields)))

    def release_past(self) -> None:
        """Write what is held if its hour is over."""
        if self._hour is not None and self._hour != to_the_hour(self.now()):
            self.release()

    def release(self) -> None:
        """Write everything held now, whatever its hour."""
        with self._lock:
            hour, held = self._hour, self._held
            self._hour, self._held = None, []
        random.SystemRandom().shuffle(held)
        for logger, event, fields in held:
            logger.info(event, extra={**fields, COARSE_TIME: hour})


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("undersigned")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
