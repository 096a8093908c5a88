"""A ballot's counted result, kept per process until its next batch (issue #25).

Counting reads every counted answer: about 100 ms of CPU at 20,000 answers (bench/ballots.py), on every read of
the results, the poll's page, its exports, the scoreboard. The result only changes when the ballot's log does:
every answer a batch writes (a first answer or a changed one) is a leaf, and so is every edit of the ballot. So
the result is kept under the log's head (its size and the hash of its last leaf, read from the primary key's
index in one step) and counted again as soon as a batch moves it, in this process or any other.

Only a result that may be shown is ever counted, hence kept: whether it is hidden (until the close and its last
batch) or below the minimum is decided before the cache is asked, on every read. The key names a ballot and its
log, nothing of a reader.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import counting
from app.core.runtime import Runtime
from app.models.ballots import Ballot, BallotLeaf

KEPT = 256  # ballots whose result a process keeps, the most recently read


Head = tuple[int, bytes]
T = TypeVar("T")


class KeptByHead(Generic[T]):
    """Something counted from a ballot's answers, per ballot, under a key that names its log head."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._lock = threading.Lock()
        self._results: OrderedDict[int, tuple[tuple[object, ...], T]] = OrderedDict()

    def get(self, ballot_id: int, key: tuple[object, ...]) -> T | None:
        with self._lock:
            found = self._results.get(ballot_id)
            if found is None or found[0] != key:
                return None
            self._results.move_to_end(ballot_id)
            return found[1]

    def put(self, ballot_id: int, key: tuple[object, ...], result: T) -> None:
        with self._lock:
            self._results[ballot_id] = (key, result)
            self._results.move_to_end(ballot_id)
            while len(self._results) > self._kept:
                self._results.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._results.clear()


class ResultCache(KeptByHead[counting.Results | counting.NotEnough]):
    """The counted results (app/ballots/service.results)."""


def result_cache(rt: Runtime) -> ResultCache:
    return rt.part(ResultCache, ResultCache)


def log_head(db: Session, ballot_id: int) -> Head | None:
    """The log's size and its last leaf's hash (None before entry 0): moved by every batch and every edit."""
    row = db.execute(
        select(BallotLeaf.index, BallotLeaf.hash)
        .where(BallotLeaf.ballot_id == ballot_id)
        .order_by(BallotLeaf.index.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0] + 1, bytes(row[1]))


def counted(
    db: Session, rt: Runtime, ballot: Ballot, count: Callable[[], counting.Results | counting.NotEnough]
) -> counting.Results | counting.NotEnough:
    """`count()`'s result for the ballot as its log stands now, counted at most once per log head per process."""
    return kept(db, ballot, result_cache(rt), count)


def kept(db: Session, ballot: Ballot, cache: KeptByHead[T], count: Callable[[], T]) -> T:
    """`count()` for the ballot as its log stands now, from `cache` if counted at this log head in this process."""
    head = log_head(db, ballot.id)
    if head is None:
        return count()
    key: tuple[object, ...] = (ballot.key_id, ballot.kind, ballot.min_answers, ballot.answers_counted, *head)
    found = cache.get(ballot.id, key)
    if found is None:
        found = count()
        cache.put(ballot.id, key, found)
    return found
