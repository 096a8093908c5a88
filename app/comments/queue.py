"""Accepted anonymous comments waiting for their batch: in the memory of one server process, or in Redis when the
deployment has one (every process's comments then go out in one batch: a bigger crowd to hide in). What it holds
names no account and no time."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Pending:
    """An accepted anonymous comment waiting for its batch: nothing in it names an account or a time."""

    ref: str
    petition_id: int
    parent_id: int | None
    body: str
    author_tag: str
    pseudonym: str


class CommentQueue:
    """Accepted anonymous comments waiting for the next batch, in this process's memory; plus, per petition, how
    many batches a group too small to publish has already waited."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._waited: dict[int, int] = {}
        self._lock = threading.Lock()

    def add(self, item: Pending) -> None:
        with self._lock:
            self._pending[item.ref] = item

    def take(self) -> list[Pending]:
        with self._lock:
            items, self._pending = list(self._pending.values()), {}
        return items

    def waited(self, petition_id: int) -> int:
        return self._waited.get(petition_id, 0)

    def set_waited(self, petition_id: int, rounds: int) -> None:
        with self._lock:
            if rounds:
                self._waited[petition_id] = rounds
            else:
                self._waited.pop(petition_id, None)

    def __len__(self) -> int:
        return len(self._pending)


class RedisCommentQueue(CommentQueue):
    """The same in Redis, shared by every server process: a hash of pending comments under random fields (no
    expiry, so no key's lifetime dates anything), and a hash of rounds waited per petition."""

    KEY = "undersigned:anonymous:comments"
    WAITED = "undersigned:anonymous:comments:waited"

    def __init__(self, url: str) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url)

    def add(self, item: Pending) -> None:
        self._redis.hset(self.KEY, item.ref, json.dumps(asdict(item)))

    def take(self) -> list[Pending]:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.KEY)
            pipe.delete(self.KEY)
            values, _deleted = pipe.execute()
        return [Pending(**json.loads(raw)) for raw in values.values()]

    def waited(self, petition_id: int) -> int:
        return int(self._redis.hget(self.WAITED, str(petition_id)) or 0)

    def set_waited(self, petition_id: int, rounds: int) -> None:
        if rounds:
            self._redis.hset(self.WAITED, str(petition_id), rounds)
        else:
            self._redis.hdel(self.WAITED, str(petition_id))

    def __len__(self) -> int:
        return int(self._redis.hlen(self.KEY))


def queue_for(redis_url: str | None) -> CommentQueue:
    return RedisCommentQueue(redis_url) if redis_url else CommentQueue()
