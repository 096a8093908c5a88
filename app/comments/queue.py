"""Accepted anonymous comments, and their authors' edits and deletions, waiting for the hourly batch: in the memory
of the server process that accepted them, never in shared storage (see app/anonymous/queue.py: a copy of Redis
taken while they wait would date their arrival). What it holds names no account and no time."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.core.runtime import Runtime


@dataclass(frozen=True)
class Pending:
    """An accepted anonymous comment waiting for its batch: nothing in it names an account or a time."""

    ref: str
    petition_id: int
    parent_id: int | None
    body: str
    author_tag: str
    pseudonym: str


@dataclass(frozen=True)
class Change:
    """An author's edit (`body`) or deletion (`body` None) of a published anonymous comment, applied by the next
    batch: applied at once, its moment would be public to anyone watching the page."""

    ref: str
    comment_id: int
    author_tag: str
    body: str | None


class CommentQueue:
    """Accepted anonymous comments waiting for the next batch, in this process's memory; plus, per petition, how
    many batches a group too small to publish has already waited."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._changes: dict[str, Change] = {}
        self._waited: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, item: Pending) -> None:
        with self._lock:
            self._pending[item.ref] = item

    def add_change(self, change: Change) -> None:
        with self._lock:
            self._changes[change.ref] = change

    def waiting_from(self, author_tag: str) -> int:
        """How many comments and changes of one credential wait: the limit on anonymous posting, kept here rather
        than in a rate-limit key whose lifetime in Redis would date the first of them."""
        with self._lock:
            return sum(item.author_tag == author_tag for item in self._pending.values()) + sum(
                change.author_tag == author_tag for change in self._changes.values()
            )

    def take(self) -> list[Pending]:
        with self._lock:
            items, self._pending = list(self._pending.values()), {}
        return items

    def take_changes(self) -> list[Change]:
        with self._lock:
            changes, self._changes = list(self._changes.values()), {}
        return changes

    def waited(self, petition_id: int) -> int:
        return self._waited.get(petition_id, 0)

    def set_waited(self, petition_id: int, rounds: int) -> None:
        with self._lock:
            if rounds:
                self._waited[petition_id] = rounds
            else:
                self._waited.pop(petition_id, None)

    def __len__(self) -> int:
        return len(self._pending) + len(self._changes)


def comment_queue(rt: Runtime) -> CommentQueue:
    """This process's queue, which the runtime keeps for the life of the process."""
    return rt.part(CommentQueue, CommentQueue)
