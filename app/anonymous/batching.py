"""When a petition's pending anonymous entries may be published: the rule, with no database and no clock.

A group (one petition's entries waiting for a batch) goes out once it holds at least k entries (the minimum
group size), so each entry hides among at least k in its batch; a smaller group waits, at most the maximum
delay, counted in whole hours (nothing finer is kept about a waiting group), and goes out at once when the
petition closes. A smaller group that had to go out is noted publicly on the petition's timeline. The same
rule serves every anonymous feature that publishes in batches (signatures, comments).
"""

from __future__ import annotations

import math
from enum import StrEnum


class Reason(StrEnum):
    full = "full"  # at least k entries
    max_delay = "max_delay"  # waited the maximum delay
    closing = "closing"  # the petition closed (entries accepted while it was open still count)


def max_delay_hours(max_delay_seconds: float) -> int:
    """The maximum delay as whole hours waited, at least one: a group's wait is kept to the hour."""
    return max(1, math.ceil(max_delay_seconds / 3600))


def publish_reason(
    *, count: int, hours_waited: int, closing: bool, min_group_size: int, max_delay_seconds: float
) -> Reason | None:
    """Why a group of `count` pending entries is published now, or None to hold it for a later batch."""
    if count <= 0:
        return None
    if count >= min_group_size:
        return Reason.full
    if closing:
        return Reason.closing
    if hours_waited >= max_delay_hours(max_delay_seconds):
        return Reason.max_delay
    return None


def hours_between(since_hour: int, now_hour: int) -> int:
    """Whole hours a group has waited, from hour numbers (hours since the epoch)."""
    return max(0, now_hour - since_hour)
