"""Standard-library servers (a witness, a recording proxy) served on a thread for the length of a block.

Standard library only: tests/test_witness_protocol.py's witness imports nothing from `app`."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve `server` on a daemon thread until the block ends, then shut it down and close it. Its loop looks for
    the shutdown every 20 ms: at socketserver's default of half a second, each test that stopped one waited about
    0.4 s for nothing (8 s of tests/test_client.py's 15)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
