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
from dataclasses import dataclass

from app.core.runtime import Runtime


@dataclass(frozen=True)
class Entry:
    petition_id: int
    message: bytes
    signature: bytes
    nullifier: str


class AnonymousQueue:
    """Accepted anonymous signatures waiting for the next batch, in this process's memory only.

    Nothing about them touches the database or a log before the batch; if the process dies first, the wallet,
    which keeps its token until it sees the entry published, sends it again."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], Entry] = {}
        self._held_since: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, entry: Entry) -> bool:
        with self._lock:
            if (entry.petition_id, entry.nullifier) in self._entries:
                return False
            self._entries[(entry.petition_id, entry.nullifier)] = entry
            return True

    def holds(self, petition_id: int, spent: str) -> bool:
        return (petition_id, spent) in self._entries

    def discard(self, entry: Entry) -> None:
        with self._lock:
            self._entries.pop((entry.petition_id, entry.nullifier), None)

    def take(self) -> list[Entry]:
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        return entries

    def held_since(self, petition_id: int, hour: int) -> int:
        """The hour (hours since the epoch) this petition's group was first held back; `hour` if it was not."""
        with self._lock:
            return self._held_since.setdefault(petition_id, hour)

    def release(self, petition_id: int) -> None:
        """The petition's group was published: a later one starts waiting afresh."""
        with self._lock:
            self._held_since.pop(petition_id, None)

    def __len__(self) -> int:
        return len(self._entries)


def anonymous_queue(rt: Runtime) -> AnonymousQueue:
    """This process's queue, which the runtime keeps for the life of the process."""
    return rt.part(AnonymousQueue, AnonymousQueue)
