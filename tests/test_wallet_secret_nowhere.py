"""The server never sees the wallet secret (issue 19, "Done means"): the attacker's method, as code.

A production-like deployment (batching on, Redis on, the worker's jobs run; the linkage suite's harness,
tests/linkage/journey.py) lives through one worker's wallet: device A makes the wallet and collects credentials,
shows a linking code; device B (another browser of the same account) answers, receives the secret sealed end to
end, collects the kept replies, signs anonymously and comments; a third device takes the recovery code, comments
under the same pseudonym, leaves a linking session half-finished (sealed, never collected, left to expire) and
shows a code that the command-line client answers (`undersigned client wallet link URL`, typing the code at its prompt). Then everything the deployment wrote is read raw (every table; PostgreSQL's heap tuples, live and
dead, and its WAL segments where this test may read them; the SQLite file and its WAL; every log line of every
logger; every key and value of every Redis copy) and searched for the secret (raw, hex, base64, base64url), the
recovery code and the linking code (with and without hyphens), the keys derived from the code, both devices' ECDH
private keys, their shared secret and the sealing key; every sealed box found is tried with every key found.
Nothing may be found. What the server holds while the session is open (in Redis, under a keyed hash of the
account, when the deployment has Redis; in its memory otherwise) is read too, as the operator would, and a copy of
Redis is taken at that moment: public keys, proofs and a box that no key found anywhere opens.

The search is shown to work on the same data (it finds what the server is meant to hold: the wallet's check, the
linking routes' hourly log lines and rate-limit keys), and to fail on broken variants (test doubles of a device): one
that sends the secret in clear, one that registers the secret as its check, and one whose sealing key reaches a log
line, which then opens the box found in Redis.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from app.anonymous import derive
from app.anonymous.linking import link_sessions
from app.core.errors import NotFound
from tests import factories
from tests.linkage import journey, secret_search, wallet
from tests.linkage.secret_search import Finding, Stores
from tests.server_process import scratch_database

pytestmark = pytest.mark.linkage


@dataclass
class Run:
    stores: Stores
    secrets: dict[str, bytes]  # what must be found nowhere, by name
    codes: dict[str, str]
    check: bytes  # the wallet's check value, which the server keeps
    memory: list[Stores] = field(default_factory=list)  # what the server holds of the session, read while open
    sessions_left: int = -1


class RootLines(logging.Handler):
    """Every line of every other logger (libraries, uvicorn), formatted with their arguments."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()} {record.__dict__!r}")


@contextmanager
def _every_log_line() -> Iterator[RootLines]:
    root = logging.getLogger()
    handler, level = RootLines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _held(day: journey.Day) -> Stores:
    """What the server holds for the open linking sessions, wherever it keeps them (its memory, or Redis when the
    deployment has it): every field of every account's session, read as the server reads it. A copy of Redis is
    taken at the same moment, for the stores the attacker reads."""
    held = Stores()
    now = day.clock.now()
    for account in {person.account_id for person in day.people.values()}:
        try:
            session = link_sessions(day.runtime).get(account, now=now)
        except NotFound:
            continue
        for name, value in dataclasses.asdict(session).items():
            held.add(f"what the server holds: account {account}'s session, {name}", value)
    day.redis_copies.append(day.redis.copy())
    return held


class SendsTheSecretInClear(wallet.LinkingA):
    """A broken device A: the 'sealed' box is the secret itself, padded to the box's length."""

    def seal(self, secret: bytes, answer_raw: bytes) -> bytes:
        return bytes(12) + secret + bytes(16)


class LogsItsSealingKey(wallet.LinkingA):
    """A broken device A whose sealing key reaches the deployment's log (a debug line left in)."""

    def seal(self, secret: bytes, answer_raw: bytes) -> bytes:
        sealed = super().seal(secret, answer_raw)
        _shared, key = wallet.sealing_key(self.private, answer_raw, self.keys["seal"])
        logging.getLogger("undersigned.wallet").warning("sealed with %s", key.hex())
        return sealed


@dataclass(frozen=True)
class Variant:
    """How one worker's devices behave: as the spec says, or broken in one way (a test double). A broken device B
    refuses what it is sent (`b_refuses`): the box does not open, or the secret in it is not the wallet the server
    knows."""

    linking_a: type[wallet.LinkingA] = wallet.LinkingA
    registers: Callable[[bytes], bytes] = derive.check
    b_refuses: bool = False


def _wallet_on_devices(day: journey.Day, first: str, petition: int, variant: Variant, *, full_day: bool) -> Run:
    """One worker's wallet: made on device A, linked to device B; on the full day, B signs and comments
    anonymously and a third device takes the recovery code and comments. The run's `stores` are filled later."""
    material, memory = wallet.KeyMaterial(), []
    worker = day.person(first, "achebe")
    worker.derived = True
    # Device A: the wallet is made and registered on the first signed-in page; it collects.
    worker.sign_in()
    original = derive.check
    derive.check = variant.registers  # type: ignore[assignment]  # the broken variant's device, if any
    try:
        worker.open_petition(petition)
    finally:
        derive.check = original
    assert worker.secret is not None and {slot[1] for slot in worker.tokens} == {"sign", "discuss"}
    recovery = derive.recovery_code(worker.secret)
    # Device B: signed in, no wallet: it collects nothing until it is linked.
    day.advance(600)
    phone = day.device(worker)
    phone.sign_in()
    phone.request("GET", "/wallet/link")
    assert wallet.sync(phone) == "elsewhere" and not phone.tokens
    worker.request("GET", "/wallet/link")
    try:
        received = wallet.link(
            worker, phone, material, linking_a=variant.linking_a, between=lambda: memory.append(_held(day))
        )
    except (InvalidTag, AssertionError):
        if not variant.b_refuses:
            raise
    else:
        assert not variant.b_refuses and received == worker.secret
        # A's next poll reads the "done" marker B's collecting left (keys, proofs and box already gone), once.
        assert set(worker.request("GET", wallet.LINK_PATH).json()) == {"state", "expires_in"}
    sessions_left = len(link_sessions(day.runtime))
    if full_day:
        phone.sync_wallet()  # finalizes the replies A's requests got, from the same secret
        assert phone.tokens == worker.tokens, "device B did not rebuild device A's credentials"
        day.advance(300)
        phone.sign_anonymously(petition)
        day.advance(200)
        phone.comment_anonymously(petition, "Linked my phone: the recordings are kept for years.")
        # A third device, by the recovery code (typed as printed).
        day.advance(3600)
        laptop = day.device(worker)
        laptop.sign_in()
        laptop.request("GET", "/wallet")
        wallet.import_recovery_code(laptop, recovery)
        laptop.sync_wallet()
        assert laptop.tokens == worker.tokens
        day.advance(400)
        laptop.comment_anonymously(petition, "Same wallet on the new laptop: I am the colleague above.")
        # A session left half-finished: a tablet answers the laptop's code, the laptop seals, and the tablet is
        # closed before it collects. The box waits in the server's store until the session expires, through
        # the Redis copies of those minutes.
        tablet = day.device(worker)
        tablet.sign_in()
        offer = wallet.LinkingA(laptop, material)
        offer.open()
        wallet.LinkingB(tablet, offer.shown, material).answer()
        offer.complete()
        memory.append(_held(day))
        day.advance(900)
        assert tablet.secret is None
        # A terminal: `undersigned client wallet link URL`, typing the code at its prompt answers the code the laptop's page shows.
        day.advance(900)
        terminal = _link_terminal(day, laptop, material, f"{day.base_url}/petitions/{petition}")
        assert terminal == worker.secret
    secrets = {"the wallet secret": worker.secret, **material.values}
    codes = {"the recovery code": recovery, **{f"the linking code #{i}": code for i, code in enumerate(material.codes)}}
    return Run(Stores(), secrets, codes, variant.registers(worker.secret), memory, sessions_left)


def _link_terminal(day: journey.Day, shows: journey.Person, material: wallet.KeyMaterial, url: str) -> bytes:
    """The command-line client as device B: it answers and then polls (real seconds) until the page of the device
    showing the code has sealed the secret; that page's polls run here meanwhile. Returns what the wallet file
    keeps."""
    from typer.testing import CliRunner

    from app.cli import cli
    from app.clients import anonymous as client

    wallet_file = day.folder / f"wallet-{shows.first}-terminal" / "wallet.json"
    offer = wallet.LinkingA(shows, material)
    offer.open()
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["result"] = CliRunner().invoke(
            cli,
            [
                "client",
                "wallet",
                "link",
                url,
                "--stdin",
                "--email",
                shows.email,
                "--password",
                journey.PASSWORD,
                "--wallet",
                str(wallet_file),
            ],
            input=offer.shown.lower() + "\n",
            catch_exceptions=False,
        )

    terminal = threading.Thread(target=run)
    terminal.start()
    deadline = time.monotonic() + 60
    while shows.request("GET", wallet.LINK_PATH, pause=0).json()["state"] == "offered":
        assert terminal.is_alive() and time.monotonic() < deadline, outcome.get("result") and outcome["result"].output
        time.sleep(0.1)
    offer.complete()
    terminal.join(60)
    result = outcome["result"]
    assert result.exit_code == 0 and "Your wallet for" in result.output, result.output
    kept = client.wallet_secret(client.load_wallet(wallet_file), day.base_url, shows.email)
    assert kept is not None
    return kept


def _wal_segments(url: str, *, since: float) -> dict[str, bytes]:
    """PostgreSQL's WAL segments written since `since`, by path, when this test may read the server's data
    directory (a server on this machine, run as a user who can read it); none otherwise."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        try:
            shown = connection.execute("SHOW data_directory").fetchone()
            assert shown is not None
            folder = Path(str(shown[0])) / "pg_wal"
        except psycopg.Error:
            return {}
    try:
        segments = [path for path in folder.iterdir() if path.is_file() and len(path.name) == 24]
        return {str(path): path.read_bytes() for path in segments if path.stat().st_mtime >= since - 1}
    except OSError:
        return {}


def _live_through(kind: str, folder: Path, variants: dict[str, Variant], *, full_day: bool = True) -> dict[str, Run]:
    """Each variant's worker's wallet on a deployment of its own (the crowd of colleagues first on the full day);
    everything the deployment wrote, read raw, is every run's `stores`."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with scratch_database(kind, folder, "walletadv") as url, _every_log_line() as others:
        with journey.Day(kind, url, folder) as day:
            colleagues = [day.person(first, last) for first, last in journey.PEOPLE[:5]]
            with day.app.state.write_sessionmaker() as db:
                from app.models.accounts import User

                petition = factories.open_petition(
                    db,
                    day.runtime,
                    creator=db.get(User, colleagues[0].account_id),
                    allow_anonymous=True,
                    title="Stop recording our screens",
                ).id
            day.until(8, 0)
            for colleague in colleagues if full_day else []:  # the crowd: each holds the petition's credentials
                colleague.sign_in()
                colleague.open_petition(petition)
                day.advance(120)
            runs = {}
            for name, variant in variants.items():
                day.advance(900)
                runs[name] = _wallet_on_devices(day, name, petition, variant, full_day=full_day)
            if full_day:  # the colleagues act anonymously too: the batches need no night to go out
                for number, colleague in enumerate(colleagues):
                    day.advance(240)
                    colleague.sign_anonymously(petition)
                    colleague.comment_anonymously(petition, f"Colleague {number} agrees: the recordings must stop.")
                day.finish()
            capture = day.capture()
        files = dict(capture.files)
        if kind == "postgresql":
            files.update(_wal_segments(url, since=started))
        stores = secret_search.read_stores(
            kind=kind,
            database_url=url,
            files=files,
            log_lines=capture.log_lines + others.lines,
            redis_copies=capture.redis_copies,
        )
    for run in runs.values():
        run.stores = stores
    return runs


def _found(run: Run, stores: Stores | None = None) -> list[Finding]:
    stores = run.stores if stores is None else stores
    return secret_search.search(stores, run.secrets, run.codes) + secret_search.open_boxes(stores)


def _report(findings: list[Finding]) -> str:
    return "\n".join(str(finding) for finding in findings[:40]) + (
        f"\n... and {len(findings) - 40} more" if len(findings) > 40 else ""
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def honest(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _live_through(kind, tmp_path_factory.mktemp(f"secret-{kind}"), {"ada": Variant()})["ada"]


def test_no_table_log_line_or_redis_key_holds_the_secret_or_a_key_that_opens_it(honest: Run) -> None:
    findings = _found(honest)
    assert not findings, "the wallet secret or a key to it was found:\n" + _report(findings)


def test_what_the_server_holds_of_a_linking_session_opens_with_nothing_found_anywhere(honest: Run) -> None:
    assert honest.memory and any(any("sealed" in item.where for item in held.items) for held in honest.memory), (
        "what the server holds was not read while it held the sealed box"
    )
    for held in honest.memory:
        findings = _found(honest, held)
        assert not findings, _report(findings)
    assert honest.sessions_left == 0, "the session outlived device B's 'done'"


def test_the_search_reads_every_store_it_claims_to(honest: Run, kind: str) -> None:
    """What the server is meant to keep, found by the same search: the search is not blind to any store."""
    check = secret_search.search(honest.stores, {"the wallet check": honest.check}, {})
    places = {finding.where.split(".")[0].split(" (")[0] for finding in check}
    assert "wallet_checks" in places, _report(check)
    if kind == "postgresql":
        assert any("tuple" in finding.where and "wallet_checks" in finding.where for finding in check)
        wal = [item for item in honest.stores.items if "pg_wal" in item.where]
        assert not wal or any("pg_wal" in finding.where for finding in check), (
            f"{len(wal)} WAL segments read, and the wallet check is in none: " + _report(check)
        )
    else:
        assert any("SQLite file" in finding.where for finding in check), _report(check)
    assert any(
        item.where.startswith("log line") and b"/api/v1/wallet/link" in item.data for item in honest.stores.items
    ), "no log line of the linking routes was read"
    assert any("Redis" in item.where and b"wallet-link" in item.data for item in honest.stores.items), (
        "no Redis key of the linking routes' rate limits was read"
    )
    # Where the server keeps open sessions in Redis, the copy taken while one was open holds its sealed box, and
    # the search took it as a box to open.
    sessions = [item for item in honest.stores.items if "Redis" in item.where and b'"sealed"' in item.data]
    boxes, _keys, _points = secret_search.candidates(honest.stores)
    assert not sessions or any("Redis" in where for where in boxes.values()), _report(
        [Finding("an open session's copy", item.where) for item in sessions]
    )


# -- the same search on broken variants: it must catch each -----------------------------------------------------

BROKEN = {
    "clara": Variant(linking_a=SendsTheSecretInClear, b_refuses=True),  # device A sends the secret in clear
    "cas": Variant(registers=lambda secret: secret, b_refuses=True),  # registers its secret as the check
    "kip": Variant(),  # as the spec says
    "lou": Variant(linking_a=LogsItsSealingKey),  # device A's sealing key reaches a log line
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """One deployment (its linking sessions in Redis, as the server keeps them when it has Redis), and a worker per
    variant."""
    return _live_through("sqlite", tmp_path_factory.mktemp("secret-broken"), BROKEN, full_day=False)


@pytest.mark.one_database
def test_a_device_sending_the_secret_in_clear_is_caught(broken: dict[str, Run]) -> None:
    run = broken["clara"]
    held = [finding for stores in run.memory for finding in _found(run, stores)]
    assert any("wallet secret" in finding.what for finding in held), _report(held)
    found = _found(run)
    assert any("wallet secret" in finding.what and "wallet-link:" in finding.where for finding in found), _report(found)


@pytest.mark.one_database
def test_a_device_registering_its_secret_as_the_check_is_caught(broken: dict[str, Run]) -> None:
    findings = _found(broken["cas"])
    where = {finding.where for finding in findings if finding.what.startswith("the wallet secret")}
    assert any(w.startswith("wallet_checks.check") for w in where), _report(findings)
    assert any("SQLite file" in w for w in where), _report(findings)


@pytest.mark.one_database
def test_the_boxes_kept_in_redis_open_with_no_key_found_anywhere(broken: dict[str, Run]) -> None:
    run = broken["kip"]
    boxes, _keys, points = secret_search.candidates(run.stores)
    assert sum("wallet-link:" in where for where in boxes.values()) >= 3, "no box was found in the copies of Redis"
    assert len(points) >= 2
    found = secret_search.search(run.stores, run.secrets, run.codes)
    assert not found, _report(found)
    secret = run.secrets["the wallet secret"]
    opened = [finding for finding in secret_search.open_boxes(run.stores) if secret.hex() in finding.what]
    assert not opened, _report(opened)


@pytest.mark.one_database
def test_a_sealing_key_in_a_log_line_opens_the_box_kept_in_redis(broken: dict[str, Run]) -> None:
    run = broken["lou"]
    findings = _found(run)
    assert any("sealing key" in finding.what and "log line" in finding.where for finding in findings), _report(findings)
    secret = run.secrets["the wallet secret"]
    opened = [finding for finding in findings if "sealed box opened" in finding.what and secret.hex() in finding.what]
    assert any("wallet-link:" in finding.where for finding in opened), _report(findings)
