"""The worker threads' queue: a request that has begun is finished first (issue #24).

FastAPI runs a route's synchronous dependencies and its handler each in a worker thread, a hop each, and every hop
waits its turn for one of the `worker_threads` tokens of AnyIO's default limiter, in one queue, first come first
served. Under load that queue is long, and a request waited in it once per hop: a signature (the signed-in account,
then the handler) twice, behind every member's page that arrived meanwhile, where the page waited once. In the viral
petition (64 readers, 16 signers, 1,000,000 signatures) a signature's two waits were nine tenths of its time (a
timeline of each hop, 2026-12-07), and the signers got half the signatures a second the readers' pages left room for.

Here a hop of a request that has had one already goes ahead of every first hop waiting, after the other such hops
that wait (first come first served among them). A request still joins the queue once, at its end, when it arrives,
so no request can keep another out for longer than the hops of the requests already begun take: a few each. A
request is an asyncio task (uvicorn runs each in a task of its own), and the limiter knows a task by the tokens it
held. A task that lives long and hops again and again goes first each time after its first: the app's own
background loops (the anonymous batches, the in-process outbox, every few seconds at most) and a response streamed
from a synchronous iterator; none of them hops often enough to hold the pages back.

How: AnyIO's limiter keeps its waiters in one ordered mapping and its holders in a set, and has no hook for an
order of its own. `finish_begun_first` gives the process's default limiter a queue in two lines and a set that
notes every task it serves. Those are AnyIO's private attributes: should a version of AnyIO keep them otherwise,
this says so in the log and leaves the queue as it is (first come first served, as before), and
tests/test_thread_queue.py fails.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from typing import Any

logger = logging.getLogger("undersigned.threads")

# The requests (tasks) that have held a worker thread's token: their next hop goes ahead.
_begun: weakref.WeakSet[Any] = weakref.WeakSet()


def _note(borrower: object) -> None:
    # A borrower that cannot be referred to weakly is not a request's task: first come first served.
    with contextlib.suppress(TypeError):
        _begun.add(borrower)


class _Serving(set[Any]):
    """The limiter's holders, noting each one it serves."""

    def add(self, borrower: object) -> None:
        _note(borrower)
        super().add(borrower)


class _BegunFirst(MutableMapping[Any, Any]):
    """The limiter's waiters, in two lines: the hops of requests that have begun, then the rest. A full mapping, in
    order (begun first), with OrderedDict's `popitem(last=...)` and `move_to_end`: AnyIO 4.16 sets, pops, pops the
    first, tests and counts; should a later one use more of its OrderedDict, it is here."""

    def __init__(self, waiting: OrderedDict[Any, Any]) -> None:
        self._begun: OrderedDict[Any, Any] = OrderedDict()
        self._first: OrderedDict[Any, Any] = OrderedDict(waiting)

    def _line(self, borrower: object) -> OrderedDict[Any, Any] | None:
        if borrower in self._begun:
            return self._begun
        return self._first if borrower in self._first else None

    def __getitem__(self, borrower: object) -> Any:
        line = self._line(borrower)
        if line is None:
            raise KeyError(borrower)
        return line[borrower]

    def __setitem__(self, borrower: object, event: Any) -> None:
        line = self._line(borrower)
        if line is None:
            line = self._begun if borrower in _begun else self._first
        line[borrower] = event

    def __delitem__(self, borrower: object) -> None:
        line = self._line(borrower)
        if line is None:
            raise KeyError(borrower)
        del line[borrower]

    def __iter__(self) -> Iterator[Any]:
        yield from list(self._begun)
        yield from list(self._first)

    def __len__(self) -> int:
        return len(self._begun) + len(self._first)

    def __bool__(self) -> bool:
        return bool(self._begun) or bool(self._first)

    def pop(self, borrower: object, *default: Any) -> Any:
        line = self._line(borrower)
        if line is None:
            if default:
                return default[0]
            raise KeyError(borrower)
        return line.pop(borrower)

    def popitem(self, last: bool = True) -> tuple[Any, Any]:
        if last:
            return (self._first or self._begun).popitem(last=True)
        return (self._begun or self._first).popitem(last=False)

    def move_to_end(self, borrower: object, last: bool = True) -> None:
        line = self._line(borrower)
        if line is None:
            raise KeyError(borrower)
        line.move_to_end(borrower, last=last)


def finish_begun_first(limiter: Any) -> bool:
    """Give `limiter` (AnyIO's default thread limiter, on the loop that serves the app) the order above. Returns
    whether it could."""
    waiting, holding = getattr(limiter, "_wait_queue", None), getattr(limiter, "_borrowers", None)
    if isinstance(waiting, _BegunFirst):
        return True
    if type(waiting) is not OrderedDict or type(holding) is not set:
        logger.warning("this version of AnyIO keeps its thread queue otherwise: first come first served")
        return False
    for borrower in holding:
        _note(borrower)
    limiter._wait_queue = _BegunFirst(waiting)
    limiter._borrowers = _Serving(holding)
    return True
