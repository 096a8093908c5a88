"""Structured (JSON lines) logs that carry no personal data."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# Passed as `extra` by what logs about a cookie-less (anonymous) request: the line keeps only the hour, like the
# anonymous signatures themselves, so it cannot be matched with a token's issuance or a batch by its time.
COARSE_TIME = "coarse_time"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        if getattr(record, COARSE_TIME, False):
            moment = moment.replace(minute=0, second=0, microsecond=0)
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


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("undersigned")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
