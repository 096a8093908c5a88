"""What services need besides the database session, built once per process and handed over per request."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request
from jinja2 import Environment

from app.core.cache import TTLCache
from app.core.clock import Clock
from app.core.crypto import Sealer
from app.core.ratelimit import RateLimiter
from app.core.security import Keyring
from app.core.settings import Settings
from app.core.versions import READ_SECONDS, PageVersions

PartT = TypeVar("PartT")


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keyring: Keyring
    clock: Clock
    limiter: RateLimiter
    templates: Environment
    sealer: Sealer
    cache: TTLCache
    page_versions: PageVersions
    # A feature's own objects that live as long as the process (the anonymous queue, the link sessions): core
    # imports no feature, so a feature asks for its own by class (`anonymous_queue(rt)` in app/anonymous/queue.py).
    # Fields of the constructor, so that a copy made with dataclasses.replace (another clock, other settings) shares
    # them: the process still has one anonymous queue, not one per copy.
    _parts: dict[type, object] = field(default_factory=dict, repr=False, compare=False)
    _parts_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def part(self, kind: type[PartT], build: Callable[[], PartT]) -> PartT:
        """This process's one `kind`, built by `build` the first time a feature asks for it."""
        found = self._parts.get(kind)
        if found is None:
            with self._parts_lock:
                found = self._parts.get(kind)
                if found is None:
                    found = self._parts[kind] = build()
        return cast(PartT, found)


def build_runtime(settings: Settings, *, clock: Clock, templates: Environment) -> Runtime:
    keyring = Keyring(settings.secret_key.get_secret_value())
    return Runtime(
        settings=settings,
        keyring=keyring,
        clock=clock,
        limiter=RateLimiter(storage_url=settings.redis_url, keyring=keyring),
        templates=templates,
        sealer=Sealer(keyring, settings.pii_keys.get_secret_value() if settings.pii_keys else None),
        cache=TTLCache(),
        page_versions=PageVersions(
            keyring, settings.redis_url, clock, read_seconds=min(READ_SECONDS, settings.shared_page_ttl)
        ),
    )


async def get_runtime(request: Request) -> Runtime:
    # async: no I/O, so no hop to a worker thread (every route depends on this)
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
