"""The outbox through mail-server outages and killed workers: nothing is lost, and a message goes out twice only
when its worker dies between the mail server taking it and marking it sent (delivery is at least once).

The guarantee, from app/mail/sender.py: a message is claimed in one transaction, sent with none open, and marked
sent in another. A worker killed before the mail server took the message leaves it to be sent when its claim
runs out; killed after, the message is sent again then, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.core.clock import SystemClock
from app.core.database import build_engine, build_sessionmaker
from app.mail import service as mail
from app.mail.sender import deliver_due
from app.models.mail import OutboxMessage, OutboxStatus
from tests.conftest import make_settings, outbox
from tests.server_process import (
    COMMAND,
    environment,
    free_port,
    refuse_connections,
    run_command,
    runtime,
    scratch_database,
)
from tests.test_mail import Inbox, queue_one

RECIPIENTS = [f"person{i}@example.org" for i in range(5)]


def received(inbox: Inbox) -> Counter[str]:
    return Counter(recipient for recipients, _ in inbox.messages for recipient in recipients)


def test_queued_mail_outlasts_a_long_outage_then_each_message_is_sent_once(
    db,
    app,
    sessions,
    clock,
    database_url: str,
) -> None:
    port = free_port()  # nothing listens there yet: the mail server is down
    settings = make_settings(database_url, smtp_host="127.0.0.1", smtp_port=port, outbox_max_attempts=3)
    for to in RECIPIENTS:
        queue_one(db, app, clock, to=to)

    assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0
    rows = outbox(db)
    assert [row.attempts for row in rows] == [1, 0, 0, 0, 0], "a server that is down ends the round"
    assert rows[0].last_error == "ConnectionRefusedError"
    assert rows[0].next_attempt_at == clock.now() + timedelta(hours=1)  # the next whole hour (app/mail/sender.py)

    # Four hours down, a round every five minutes: each message tried once an hour, more often than
    # outbox_max_attempts, and none given up, since the fault is the server's, not the message's.
    for _ in range(48):
        clock.advance(timedelta(minutes=5))
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0
    rows = outbox(db)
    assert {row.status for row in rows} == {OutboxStatus.pending}
    assert min(row.attempts for row in rows) > settings.outbox_max_attempts
    assert max(row.next_attempt_at for row in rows) <= clock.now() + timedelta(hours=1)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock.advance(timedelta(hours=1))  # retries wait an hour at most: everything is due
        assert deliver_due(sessions=sessions, settings=settings, clock=clock) == len(RECIPIENTS)
        back_at = clock.now()
        for _ in range(3):
            clock.advance(timedelta(hours=2))
            assert deliver_due(sessions=sessions, settings=settings, clock=clock) == 0
    finally:
        controller.stop()
    assert received(inbox) == {to: 1 for to in RECIPIENTS}
    assert len({email["Message-ID"] for _, email in inbox.messages}) == len(RECIPIENTS)
    rows = outbox(db)
    assert {(row.status, row.sent_at, row.last_error) for row in rows} == {(OutboxStatus.sent, back_at, None)}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path, "faults_mail") as url:
        yield url


def _queue(url: str, recipients: list[str]) -> list[int]:
    """Queue one message to each recipient, committed (as a request would), in order; their outbox ids."""
    rt = runtime(url)
    engine = build_engine(url)
    with build_sessionmaker(engine).begin() as db:
        ids = [
            mail.queue(
                db=db,
                templates=rt.templates,
                to_address=to,
                template="account_exists",
                context={"user": {"display_name": "Ana"}, "base_url": "http://testserver"},
                now=datetime.now(UTC),
            ).id
            for to in recipients
        ]
    engine.dispose()
    return ids


def _rows(url: str) -> dict[str, OutboxMessage]:
    engine = build_engine(url)
    with Session(engine, expire_on_commit=False) as db:
        rows = {row.to_address: row for row in db.scalars(select(OutboxMessage))}
    engine.dispose()
    return rows


class HoldingInbox(Inbox):
    """Takes the message for `held`, then keeps its reply until told: the sender is killed meanwhile."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.held in envelope.rcpt_tos and not self.holding.is_set():
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return reply


def test_a_worker_killed_after_the_mail_server_took_a_message_sends_it_again_with_the_same_id(
    database: str, tmp_path: Path
) -> None:
    port = free_port()
    held = RECIPIENTS[2]
    _queue(database, RECIPIENTS)
    inbox = HoldingInbox(held)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = {"smtp_host": "127.0.0.1", "smtp_port": str(port)}
    try:
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [COMMAND, "worker", "--once"],
                env=environment(database, **smtp),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            assert inbox.holding.wait(60), (tmp_path / "worker.log").read_text()
            os.killpg(worker.pid, signal.SIGKILL)  # the server has the message; the worker never hears back
        finally:
            worker.wait(30)
            inbox.release.set()

        rows = _rows(database)
        assert {to: row.status for to, row in rows.items()} == {
            **{to: OutboxStatus.sent for to in RECIPIENTS[:2]},
            **{to: OutboxStatus.pending for to in RECIPIENTS[2:]},
        }
        assert rows[held].attempts == 1 and rows[held].next_attempt_at > datetime.now(UTC), "claimed, not lost"

        # A new worker sends the rest; the message killed mid-way waits for its claim to run out.
        again = run_command(database, "worker", "--once", **smtp)
        assert again.returncode == 0 and "Sent 2 messages" in again.stdout, again
        engine = build_engine(database)
        with engine.begin() as connection:  # the claim runs out
            connection.execute(
                update(OutboxMessage).where(OutboxMessage.id == rows[held].id).values(next_attempt_at=datetime.now(UTC))
            )
        engine.dispose()
        last = run_command(database, "worker", "--once", **smtp)
        assert last.returncode == 0 and "Sent 1 message;" in last.stdout, last
    finally:
        controller.stop()

    assert received(inbox) == {**{to: 1 for to in RECIPIENTS}, held: 2}, "at least once: only the held one twice"
    copies = [email["Message-ID"] for recipients, email in inbox.messages if held in recipients]
    assert len(set(copies)) == 1, copies
    rows = _rows(database)
    assert {row.status for row in rows.values()} == {OutboxStatus.sent} and rows[held].attempts == 2


class SilentMailServer:
    """Accepts connections and never says a word, like a mail server that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.connection: socket.socket | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.connection, _ = self.sock.accept()
        self.connected.set()

    def hang_up(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.sock.close()


def _lock_outbox_row_at_once(url: str, outbox_id: int) -> None:
    """Write-lock the message's row without waiting: fails if the worker holds a lock on it (or, on SQLite,
    the database's write lock, which every signer needs)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        assert database is not None
        sqlite_connection = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            sqlite_connection.execute("BEGIN IMMEDIATE")
            sqlite_connection.execute("UPDATE outbox_messages SET template = template WHERE id = ?", (outbox_id,))
            sqlite_connection.execute("ROLLBACK")
        finally:
            sqlite_connection.close()
        return
    engine = build_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT id FROM outbox_messages WHERE id = :id FOR UPDATE NOWAIT"), {"id": outbox_id})
        connection.rollback()
    engine.dispose()


def test_a_hanging_mail_server_holds_no_database_lock(database: str) -> None:
    first, _ = _queue(database, RECIPIENTS[:2])
    silent = SilentMailServer()
    settings = make_settings(database, smtp_host="127.0.0.1", smtp_port=silent.port, smtp_timeout_seconds=120)
    engine = build_engine(database)
    results: list[int] = []
    worker = threading.Thread(
        target=lambda: results.append(
            deliver_due(sessions=build_sessionmaker(engine, writes=True), settings=settings, clock=SystemClock())
        )
    )
    worker.start()
    try:
        assert silent.connected.wait(60), "the worker did not reach the mail server"
        _lock_outbox_row_at_once(database, first)  # while the worker waits for the server's greeting
    finally:
        silent.hang_up()
        worker.join(60)
        engine.dispose()
    assert results == [0]
    rows = _rows(database)
    assert rows[RECIPIENTS[0]].last_error == "SMTPServerDisconnected" and rows[RECIPIENTS[0]].attempts == 1
    assert rows[RECIPIENTS[1]].attempts == 0, "a server that hangs up ends the round"
    assert {row.status for row in rows.values()} == {OutboxStatus.pending}


def test_the_worker_outlives_a_database_outage(tmp_path: Path) -> None:
    with scratch_database("postgresql", tmp_path, "faults_worker") as url:
        log_path = tmp_path / "worker.log"
        with log_path.open("ab") as log:
            worker = subprocess.Popen(
                [COMMAND, "worker"],
                env=environment(url, outbox_poll_seconds="0.2"),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            refuse_connections(url, refuse=True)
            try:
                deadline = time.monotonic() + 60
                while "worker round failed" not in log_path.read_text() and time.monotonic() < deadline:
                    assert worker.poll() is None, log_path.read_text()
                    time.sleep(0.1)
            finally:
                refuse_connections(url, refuse=False)
            assert "worker round failed" in log_path.read_text()
            _queue(url, RECIPIENTS[:1])
            deadline = time.monotonic() + 60
            while _rows(url)[RECIPIENTS[0]].status != OutboxStatus.sent and time.monotonic() < deadline:
                assert worker.poll() is None, log_path.read_text()
                time.sleep(0.2)
            assert _rows(url)[RECIPIENTS[0]].status == OutboxStatus.sent
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
