"""The time source, injected so time-dependent behaviour is tested without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def to_the_hour(moment: datetime) -> datetime:
    """The hour a moment falls in: all a row tied to an account keeps of a time (docs/security.md), so its
    time cannot be matched with an anonymous action, a batch or a log line."""
    return moment.replace(minute=0, second=0, microsecond=0)


def rounded_up(moment: datetime, step: timedelta) -> datetime:
    """The first multiple of `step` (counted from the hour; `step` divides an hour) at or after `moment`: for a
    deadline that must be finer than the hour but need not date the moment it was set."""
    hour = to_the_hour(moment)
    steps = -(-(moment - hour) // step)  # ceiling division
    return hour + steps * step
