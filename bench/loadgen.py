"""A load generator that is not the bottleneck: a bare HTTP/1.1 client on asyncio, run in processes of its own.

httpx costs a millisecond or more of CPU per request in Python; 10,000 open pages polling every 15 s send 1,333
requests a second, which one httpx client on one event loop cannot send on this machine, let alone on time (the
viral-petition bench measured its own client that way: polls queued behind each other for seconds and timed out).
This client writes the request line and headers itself and reads back the status, the headers and a
Content-Length or chunked body (what uvicorn sends), over keep-alive connections from a small pool: a few tens of
microseconds per request. Each role runs in a process of its own (`run_roles`), so that a crowd of polls never
delays a signer's next request, and each process reports the CPU it used, so a report can say what the client cost.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 10.0  # seconds, as wrk's --timeout in the benches


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Failed(Exception):
    """No answer: refused, reset, or not within the timeout."""


class _ClosedIdle(ConnectionResetError):
    """The server had closed the kept-alive connection (its idle timeout, uvicorn's 5 s) before this request."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> Answer:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise _ClosedIdle("closed by the server before any answer")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readline()
            body = b"".join(chunks)
        else:
            body = b""  # 304, 204: no body
        return Answer(status, headers, body)

    def close(self) -> None:
        self.writer.close()


class Client:
    """Keep-alive connections to one server, at most `connections` at once; requests wait for a free one."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host, self.port = host, port
        self._free: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", *, fresh: bool = False
    ) -> Answer:
        """`fresh`: on a connection of its own, closed after the answer (a browser's first request)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if fresh:
            lines.append("Connection: close")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method not in ("GET", "HEAD"):
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots:
            connection = self._free.pop() if self._free and not fresh else None
            try:
                if connection is not None:
                    try:
                        answer = await asyncio.wait_for(connection.exchange(request), TIMEOUT)
                    except _ClosedIdle:
                        # Closed by the server while it sat idle here: sent again on a new connection, as a browser
                        # does. Counted as failed, these were comments that "got no answer" in the viral bench.
                        connection.close()
                        connection = None
                if connection is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port, limit=4 * 1024 * 1024), TIMEOUT
                    )
                    connection = _Connection(reader, writer)
                    answer = await asyncio.wait_for(connection.exchange(request), TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
                if connection is not None:
                    connection.close()  # half-read or timed out: never reused
                raise Failed(repr(error)) from None
            if fresh or answer.headers.get("connection", "").lower() == "close":
                connection.close()
            else:
                self._free.append(connection)
            return answer

    def close(self) -> None:
        for connection in self._free:
            connection.close()
        self._free.clear()


@dataclass
class Tally:
    """Latencies (seconds) and answers by status (0: no answer) of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # why there was no answer (`Failed`), and how often

    def add(self, started: float, status: int, reason: str | None = None) -> None:
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if reason is not None:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def merge(self, other: Tally) -> None:
        self.latencies += other.latencies
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(status, 0) for status in statuses)

    def failed(self, *good: int) -> int:
        return sum(count for status, count in self.statuses.items() if status not in good)


# A role: an async function of (client, start, deadline, its arguments) returning its tallies by kind.
Role = Callable[..., Awaitable[dict[str, Tally]]]


@dataclass
class Outcome:
    tallies: dict[str, Tally]
    cpu_seconds: float  # the role's process: user and system


def _run_role(role: Role, port: int, connections: int, start: float, deadline: float, args: Any, out: Any) -> None:
    try:
        import uvloop  # uvicorn's own loop, when installed: less client CPU per request

        uvloop.install()
    except ImportError:
        pass

    async def main() -> dict[str, Tally]:
        client = Client("127.0.0.1", port, connections)
        await asyncio.sleep(max(0.0, start - time.time()))
        try:
            return await role(client, deadline, args)
        finally:
            client.close()

    tallies = asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.send(Outcome(tallies=tallies, cpu_seconds=usage.ru_utime + usage.ru_stime))
    out.close()


def start_roles(
    roles: list[tuple[Role, int, Any]], *, port: int, start: float, duration: float
) -> Callable[[], list[Outcome]]:
    """Start each (role, connections, arguments) in a process of its own, all beginning at the wall-clock time
    `start` and stopping at start + duration; returns a function that waits for them and gives their outcomes."""
    context = multiprocessing.get_context("fork")  # the children need nothing the parent set up but the role
    running = []
    for role, connections, role_args in roles:
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(
            target=_run_role, args=(role, port, connections, start, start + duration, role_args, sending)
        )
        process.start()
        sending.close()
        running.append((process, receiving))

    def wait() -> list[Outcome]:
        outcomes = []
        for process, receiving in running:
            outcomes.append(receiving.recv())
            process.join()
        return outcomes

    return wait
