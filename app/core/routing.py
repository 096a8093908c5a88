"""The route class every router uses: a handler's unit of work ends in the handler's own worker thread.

FastAPI runs a synchronous handler in a worker thread, then goes back to the event loop, where validating the
response (another worker-thread hop) and the exit of the request's session (`get_db`) follow. A session left
open until then keeps its connection, and the locks its writes took (the busiest petition's counter row, or
SQLite's write lock), through those hops: other requests queue on the lock meanwhile, and with more requests in
flight than worker threads, requests holding connections wait for threads that all wait for connections.
So the session a handler was given is committed as the handler returns, in the same thread; `get_db` then
has nothing left to do but close it, and rolls back as before when the handler raises.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _committing(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature FastAPI reads the handler's parameters and dependencies from.
    @functools.wraps(endpoint)
    def handler(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return result

    return handler
