"""A small time-limited memo for values that are read on hot paths and change rarely."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


class TTLCache:
    """Per-process; each value is reloaded after `ttl` seconds, or at once when forgotten in this process. A value
    loaded while it was forgotten is not kept: its load may have read what the change replaced (a page reading the
    departments as an admin's change commits kept the old list for its whole `ttl`)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._forgotten: dict[str, int] = {}  # per key, how many times it was forgotten

    def get(self, key: str, load: Callable[[], Any], *, ttl: float) -> Any:
        known = self._values.get(key)
        if known is not None and time.monotonic() - known[1] < ttl:
            return known[0]
        forgotten = self._forgotten.get(key, 0)
        value = load()
        self._keep(key, value, forgotten)
        return value

    def _keep(self, key: str, value: Any, forgotten: int) -> None:
        with self._lock:
            if self._forgotten.get(key, 0) == forgotten:
                self._values[key] = (value, time.monotonic())

    def get_shared(self, key: str, load: Callable[[], Any], *, ttl: float) -> Any:
        """Like `get`, for values that are costly to load and read by many requests at once: one caller loads,
        and the others take the previous value meanwhile (or, when there is none yet, wait for that load)
        rather than all loading it at the same moment."""
        known = self._values.get(key)
        if known is not None and time.monotonic() - known[1] < ttl:
            return known[0]
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        if not loading.acquire(blocking=known is None):
            return known[0]  # type: ignore[index]  # another thread is reloading it
        try:
            again = self._values.get(key)
            if again is not None and again is not known and time.monotonic() - again[1] < ttl:
                return again[0]  # loaded while this thread waited
            forgotten = self._forgotten.get(key, 0)
            value = load()
            self._keep(key, value, forgotten)
            return value
        finally:
            loading.release()

    def forget(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._forgotten[key] = self._forgotten.get(key, 0) + 1

    def forget_changed(self, db: Session, key: str) -> None:
        """For a change `db` is writing: forgotten now, for the rest of this request, and again once the change is
        committed or undone, so that no request keeps what was never saved, or what the change replaced."""
        self.forget(key)
        for moment in ("after_commit", "after_rollback"):
            event.listen(db, moment, lambda _session: self.forget(key), once=True)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
