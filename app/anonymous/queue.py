"""Accepted anonymous signatures waiting for their batch: in the memory of one server process, or in Redis
when the deployment has one, so that every server process's entries go into one shuffled batch (a bigger
crowd to hide in) and a token sent to two processes at once is caught at once.

A petition's group smaller than the minimum group size is held back (app/anonymous/batching.py); the queue
then remembers the hour the group was first held, as an hour number, and nothing finer."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import Any


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


class RedisAnonymousQueue:
    """The same queue in Redis: one hash, field "petition:nullifier". What it holds names no account."""

    KEY = "undersigned:anonymous:pending"
    # Field petition id, value the hour (hours since the epoch) its group was first held back. No TTL: a
    # key's remaining lifetime would date it more finely than the hour.
    HELD_KEY = "undersigned:anonymous:held-since"

    def __init__(self, url: str) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url)

    @staticmethod
    def _field(petition_id: int, spent: str) -> str:
        return f"{petition_id}:{spent}"

    def add(self, entry: Entry) -> bool:
        value = json.dumps({"petition_id": entry.petition_id, "nullifier": entry.nullifier,
                            "message": base64.b64encode(entry.message).decode(),
                            "signature": base64.b64encode(entry.signature).decode()})
        return bool(self._redis.hsetnx(self.KEY, self._field(entry.petition_id, entry.nullifier), value))

    def holds(self, petition_id: int, spent: str) -> bool:
        return bool(self._redis.hexists(self.KEY, self._field(petition_id, spent)))

    def discard(self, entry: Entry) -> None:
        self._redis.hdel(self.KEY, self._field(entry.petition_id, entry.nullifier))

    def take(self) -> list[Entry]:
        """Everything queued, by every process, taken at once (a transaction: nothing is taken twice)."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.KEY)
            pipe.delete(self.KEY)
            values, _deleted = pipe.execute()
        entries = []
        for raw in values.values():
            item = json.loads(raw)
            entries.append(Entry(petition_id=int(item["petition_id"]), nullifier=str(item["nullifier"]),
                                 message=base64.b64decode(item["message"]),
                                 signature=base64.b64decode(item["signature"])))
        return entries

    def held_since(self, petition_id: int, hour: int) -> int:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.HELD_KEY, str(petition_id), str(hour))
            pipe.hget(self.HELD_KEY, str(petition_id))
            _set, value = pipe.execute()
        return int(value)

    def release(self, petition_id: int) -> None:
        self._redis.hdel(self.HELD_KEY, str(petition_id))

    def __len__(self) -> int:
        return int(self._redis.hlen(self.KEY))


def queue_for(redis_url: str | None) -> AnonymousQueue | RedisAnonymousQueue:
    return RedisAnonymousQueue(redis_url) if redis_url else AnonymousQueue()
