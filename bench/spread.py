"""Server processes on one port, each with a listening socket of its own (SO_REUSEPORT), for the benches.

    python -m bench.spread --port 8123 --workers 2 app.asgi:app

`uvicorn --workers N` shares one listening socket among its processes, and the first process to wake takes every
connection waiting: a client that opens its connections at once (wrk's 64, the viral bench's 16 signers) had them
all, or most, on one process while the other idled. Issue #24's viral petition measured that race (all 1,951
signatures of one run on one process; 51 of 64 readers on one process in another, their pages at 260 ms against
46 ms on the other), not the server. With a socket each, the kernel spreads new connections among the processes
by a hash of their addresses: about evenly over many connections, unevenly over few (26 and 38 of wrk's 64 is
common), where a proxy in front of one server process per port spreads requests evenly (docs/deploy.md,
nginx's `upstream`). The processes run the app as `uvicorn` would: its default loop and parser, no access log. They
end with this process, however it ends (a bench that kills it leaves none behind).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _end_with_parent() -> None:
    """SIGTERM to this process when its parent ends (Linux's PR_SET_PDEATHSIG), as uvicorn stops on SIGTERM."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _serve(target: str, sock: socket.socket, log_level: str) -> None:
    import uvicorn

    uvicorn.Server(uvicorn.Config(target, access_log=False, log_level=log_level)).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="The ASGI app, as uvicorn names it (module:attribute).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # Every socket listens before any process serves, so no process has the port to itself for a moment.
    sockets = [_listen(args.host, args.port) for _ in range(args.workers)]
    children = []
    for own in sockets:
        pid = os.fork()
        if pid == 0:
            _end_with_parent()
            for other in sockets:
                if other is not own:
                    other.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _serve(args.target, own, args.log_level)
            os._exit(0)
        children.append(pid)
    for sock in sockets:
        sock.close()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    for child in children:
        _pid, code = os.waitpid(child, 0)
        status = status or os.waitstatus_to_exitcode(code)
    sys.exit(1 if status else 0)


if __name__ == "__main__":
    main()
