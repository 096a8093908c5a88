"""The route class every router uses: where a request's unit of work ends, and the two named ways around that.

A request's session (`get_db`) is one unit of work. It ends here, in the handler's own worker thread, as the
handler returns: committed, or rolled back when the handler answers an error status (>= 400, including an
`AppError` re-rendered as a form page) or a refusal (`refusal`: a redirect back with the reason). A handler that
raises never reaches this point, and `get_db` rolls back. Nothing else ends a request's transaction: services and
repositories flush, handlers return.

Why in the handler's thread: FastAPI runs a synchronous handler in a worker thread, then goes back to the event
loop, where validating the response (another worker-thread hop) and the exit of `get_db` follow. A session left
open until then keeps its connection, and the locks its writes took (the busiest petition's counter row, or
SQLite's write lock), through those hops: other requests queue on the lock meanwhile, and with more requests in
flight than worker threads, requests holding connections wait for threads that all wait for connections. The
sign path relies on this: its counter row is released, and the count durable, before the response is sent.

Two needs depart from that, each through one named mechanism of this module:
- `commit_now(db)`: a dependency that read before the handler (the signed-in account, the petition named in
  the path, the branding) gives its connection back rather than hold it across the next thread hop; and a
  refusal that must keep one thing it wrote (a wrong password's notice to the account's owner) keeps it.
- `AfterCommit(build)`: a response built only once the unit of work is committed, such as an export, whose
  audit record must stand before a byte of the file is read, and whose locks must not be held while it builds.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

_REFUSAL = "undersigned_refusal"


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _ending_in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)


class AfterCommit(Response):
    """A handler's answer whose response is built after the unit of work committed, in the same thread.

    A Response only in type, so that handlers keep their `-> Response` annotation: the route replaces it with
    what `build` returns before FastAPI sees it.
    """

    def __init__(self, build: Callable[[], Response]) -> None:
        self.build = build


def commit_now(db: Session) -> None:
    """End the request's transaction before the handler returns, keeping the loaded objects (see the module's
    docstring for the two uses). The rest of the request works in a new transaction of the same session."""
    db.commit()


def refusal(response: RedirectResponse) -> RedirectResponse:
    """Mark a redirect that reports a refusal (the reason goes back as a message): the unit of work rolls back,
    as for an error status."""
    setattr(response, _REFUSAL, True)
    return response


def fails(result: object) -> bool:
    """Whether a handler's answer reports a failure, so that nothing it wrote may stand."""
    if not isinstance(result, Response) or isinstance(result, AfterCommit):
        return False
    return result.status_code >= 400 or getattr(result, _REFUSAL, False)


def _ending_in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps keeps the signature FastAPI reads the handler's parameters and dependencies from.
    @functools.wraps(endpoint)
    def handler(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        failed = fails(result)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                if failed:  # a rollback expires what the session loaded: the response was rendered before it
                    value.rollback()
                else:
                    value.commit()
        return result.build() if isinstance(result, AfterCommit) else result

    return handler
