"""What services need besides the database session, built once per process and handed over per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from jinja2 import Environment

from app.core.clock import Clock
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


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
