"""Accepted anonymous signatures waiting for their batch, in the memory of the server process that accepted them.

Never in shared storage (not Redis, not the database): a copy of either taken while an entry waits, as Redis's
own snapshots take every few minutes, would date its arrival to that copy, and with it name the colleagues who
were active then (the linkage suite found exactly that). Each process batches its own entries by the same rule;
a token sent to two processes at once is accepted by both and counted once, by the spent-token table at the
batch.

A petition's group smaller than the minimum group size is held back (app/anonymous/batching.py); the queue
then remembers the hour the group was first held, as an hour number, and nothing finer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.core.runtime import Runtime

EntryT = TypeVar("EntryT")


class WaitingQueue(Generic[EntryT]):
    """Entries of one anonymous feature waiting for the next batch, in this process's memory only, each under a key
    (group, credential): the group is what a batch publishes together (a petition, a ballot), the credential what
    may wait only once in it. Anonymous signatures (below) and ballot answers (app/ballots/answers.py) use it."""

    def __init__(self, key: Callable[[EntryT], tuple[int, str]]) -> None:
        self._key = key
        self._entries: dict[tuple[int, str], EntryT] = {}
        self._held_since: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, entry: EntryT) -> bool:
        """Queue an entry; False (and nothing changes) if its credential already waits."""
        with self._lock:
            if self._key(entry) in self._entries:
                return False
            self._entries[self._key(entry)] = entry
            return True

    def replace(self, entry: EntryT) -> EntryT | None:
        """Queue an entry in place of any waiting with the same credential (returned), so only the last of a batch
        is ever written."""
        with self._lock:
            previous = self._entries.get(self._key(entry))
            self._entries[self._key(entry)] = entry
            return previous

    def holds(self, group: int, credential: str) -> bool:
        return (group, credential) in self._entries

    def discard(self, entry: EntryT) -> None:
        with self._lock:
            if self._entries.get(self._key(entry)) == entry:
                del self._entries[self._key(entry)]

    def take(self) -> list[EntryT]:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        return entries

    def restore(self, entries: list[EntryT]) -> None:
        """Put back entries taken for a batch that did not write them, unless a later one with the same credential
        arrived meanwhile."""
        with self._lock:
            for entry in entries:
                self._entries.setdefault(self._key(entry), entry)

    def held_since(self, group: int, hour: int) -> int:
        """The hour (hours since the epoch) this group was first held back; `hour` if it was not."""
        with self._lock:
            return self._held_since.setdefault(group, hour)

    def release(self, group: int) -> None:
        """The group was published: a later one starts waiting afresh."""
        with self._lock:
            self._held_since.pop(group, None)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class Entry:
    petition_id: int
    message: bytes
    signature: bytes
    nullifier: str


class AnonymousQueue(WaitingQueue[Entry]):
    """Accepted anonymous signatures waiting for the next batch, in this process's memory only.

    Nothing about them touches the database or a log before the batch; if the process dies first, the wallet,
    which keeps its token until it sees the entry published, sends it again."""

    def __init__(self) -> None:
        super().__init__(lambda entry: (entry.petition_id, entry.nullifier))


def anonymous_queue(rt: Runtime) -> AnonymousQueue:
    """This process's queue, which the runtime keeps for the life of the process."""
    return rt.part(AnonymousQueue, AnonymousQueue)
