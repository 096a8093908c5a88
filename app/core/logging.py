"""Structured (JSON lines) logs that carry no personal data."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
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
