"""A small time-limited memo for values that are read on hot paths and change rarely."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class TTLCache:
    """Per-process; each value is reloaded after `ttl` seconds, or at once when forgotten in this process."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any], *, ttl: float) -> Any:
        known = self._values.get(key)
        if known is not None and time.monotonic() - known[1] < ttl:
            return known[0]
        value = load()
        with self._lock:
            self._values[key] = (value, time.monotonic())
        return value

    def forget(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
