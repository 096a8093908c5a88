"""What services need besides the database session, built once per process and handed over per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from jinja2 import Environment

from app.anonymous.linking import LinkSessions
from app.anonymous.queue import AnonymousQueue
from app.comments.queue import CommentQueue
from app.core.cache import TTLCache
from app.core.clock import Clock
from app.core.crypto import Sealer
from app.core.ratelimit import RateLimiter
from app.core.security import Keyring
from app.core.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keyring: Keyring
    clock: Clock
    limiter: RateLimiter
    templates: Environment
    sealer: Sealer
    cache: TTLCache
    anonymous_queue: AnonymousQueue
    comment_queue: CommentQueue
    link_sessions: LinkSessions


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
        anonymous_queue=AnonymousQueue(),
        comment_queue=CommentQueue(),
        link_sessions=LinkSessions(redis_url=settings.redis_url, keyring=keyring),
    )


async def get_runtime(request: Request) -> Runtime:
    # async: no I/O, so no hop to a worker thread (every route depends on this)
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
