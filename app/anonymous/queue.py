"""Accepted anonymous signatures waiting for their batch, in the memory of one server process."""

from __future__ import annotations

import threading
from dataclasses import dataclass


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

    def __len__(self) -> int:
        return len(self._entries)
