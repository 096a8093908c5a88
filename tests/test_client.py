"""The command-line wallet against a real server, through a small proxy that records what the client sends (and
can change what the server answers): sessions kept between runs, anonymous actions queued and sent later
without cookies, and keys a server shows one account but not everyone refused before anything is sent."""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.cookiejar
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from app.accounts.sessions import SESSION_COOKIE
from app.anonymous import derive
from app.cli import cli
from app.clients import anonymous as client
from app.core import b64url, blindrsa
from app.core.b64url import encode as b64e
from app.demo import DEMO_PASSWORD
from app.log import checkpoint as notes
from tests import live_server
from tests.serving import serving

PETITION = "Publish the salary bands for every role"
OTHER_PETITION = "Stop recording our screens to train AI"
T0 = 1_800_000_000.0  # the clock the commands see, moved by hand: no test sleeps


@dataclass
class Seen:
    method: str
    path: str
    cookie: str | None


@dataclass
class Proxy:
    """Forwards to the live server; records every request with its Cookie header; `tamper` may rewrite answers."""

    upstream: live_server.LiveServer
    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)
    tamper: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def requests(self, method: str, path: str) -> list[Seen]:
        return [item for item in self.seen if item.method == method and item.path.split("?")[0] == path]


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    host, port = proxy.upstream.base_url.removeprefix("http://").split(":")

    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            proxy.seen.append(Seen(self.command, self.path, self.headers.get("Cookie")))
            headers = {
                name: value for name, value in self.headers.items() if name.lower() not in ("host", "connection")
            }
            upstream = http.client.HTTPConnection(host, int(port), timeout=30)
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
            change = proxy.tamper.get(self.path.split("?")[0]) if self.command == "GET" else None
            if change is not None and answer.status == 200:
                content = json.dumps(change(json.loads(content))).encode()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
            upstream.close()

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, *args: object) -> None:
            pass

    return Forward


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("client") / "client.db")
    try:
        yield live
    finally:
        live.stop()


@contextlib.contextmanager
def proxy_to(upstream: live_server.LiveServer) -> Iterator[Proxy]:
    recorder = Proxy(upstream=upstream)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    with serving(httpd):
        yield recorder


@pytest.fixture()
def proxy(server: live_server.LiveServer) -> Iterator[Proxy]:
    with proxy_to(server) as recorder:
        yield recorder


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [T0]
    monkeypatch.setattr(client, "clock", lambda: now[0])
    return now


def petition_url(server: live_server.LiveServer, proxy: Proxy, title: str = PETITION) -> str:
    return live_server.petition_url(server, title).replace(server.base_url, proxy.base_url)


def count(server: live_server.LiveServer, url: str) -> int:
    petition = live_server.get_json(server, f"/api/v1/petitions/{url.rsplit('/', 1)[1]}")
    return int(petition["signature_count"])


def run(*args: str):
    return CliRunner().invoke(cli, ["client", *args], catch_exceptions=False)


def signed_in(email: str, wallet: Path) -> tuple[str, ...]:
    return ("--email", email, "--password", DEMO_PASSWORD, "--wallet", str(wallet))


def test_collect_early_queue_then_send_later_without_cookies(
    server,
    proxy,
    clock,
    tmp_path: Path,
) -> None:
    url = petition_url(server, proxy)
    wallet = tmp_path / "wallet.json"
    collected = run("collect", url, *signed_in("chen@example.org", wallet))
    assert collected.exit_code == 0, collected.output
    assert "a signing token" in collected.output
    # A second run keeps the session: no second sign-in, and nothing more is due.
    again = run("collect", url, "--wallet", str(wallet))
    assert again.exit_code == 0, again.output
    assert "Nothing due" in again.output
    assert len(proxy.requests("POST", "/api/v1/sessions")) == 1
    assert len(proxy.requests("GET", "/api/v1/wallet")) == 2
    for secret in (wallet, client.jar_path(wallet)):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    before = count(server, url)
    # The demo's petition has fewer token holders than the minimum group size: told, and refused unless accepted.
    small = run("sign", url, "--anonymous", "--wallet", str(wallet))
    assert small.exit_code == 1 and "You are hidden among 1 colleague who holds" in small.output
    assert "fewer than 5" in small.output and "Nothing was queued" in small.output
    assert json.loads(wallet.read_text())["outbox"] == []
    queued = run("sign", url, "--anonymous", "--accept-small-crowd", "--wallet", str(wallet))
    assert queued.exit_code == 0, queued.output
    assert "cannot be matched with your sign-in" in queued.output
    (item,) = json.loads(wallet.read_text())["outbox"]
    assert T0 + 2 * 3600 <= item["due"] <= T0 + 12 * 3600
    assert not proxy.requests("POST", "/api/v1/anonymous/signatures")

    clock[0] = item["due"] - 1
    early = run("send", "--wallet", str(wallet))
    assert early.exit_code == 0 and "Nothing due yet: 1 queued" in early.output
    assert not proxy.requests("POST", "/api/v1/anonymous/signatures") and count(server, url) == before

    clock[0] = item["due"] + 1
    already = len(proxy.seen)
    sent = run("send", "--wallet", str(wallet))
    assert sent.exit_code == 0, sent.output
    assert "Sent your anonymous signature on petition" in sent.output
    (posted,) = proxy.requests("POST", "/api/v1/anonymous/signatures")
    assert posted.cookie is None
    during_send = proxy.seen[already:]
    assert {seen.path.split("?")[0] for seen in during_send} >= {
        "/api/v1/anonymous/keys",
        f"/api/v1/petitions/{item['petition_id']}/log",
    }
    assert all(seen.cookie is None for seen in during_send)  # the key check reads without cookies too
    assert count(server, url) == before + 1
    assert len(proxy.requests("POST", "/api/v1/sessions")) == 1
    assert json.loads(wallet.read_text())["outbox"] == []

    checked = run("check", url, "--wallet", str(wallet))
    assert checked.exit_code == 0 and "published and counted" in checked.output
    refused = run("sign", url, "--anonymous", "--accept-small-crowd", "--wallet", str(wallet))
    assert refused.exit_code == 1 and "You already signed this petition with this wallet" in refused.output


def test_now_warns_before_sending_at_once(server, proxy, clock, tmp_path: Path) -> None:
    url = petition_url(server, proxy)
    before = count(server, url)
    signed = run(
        "sign",
        url,
        "--anonymous",
        "--accept-small-crowd",
        "--now",
        *signed_in("morgan@example.org", tmp_path / "w.json"),
    )
    assert signed.exit_code == 0, signed.output
    warning = signed.output.index("sending now lets the server match this signature with your sign-in".capitalize())
    assert "follows a signed-in request from this computer within seconds" in signed.output
    assert warning < signed.output.index("Sent your anonymous signature")
    (posted,) = proxy.requests("POST", "/api/v1/anonymous/signatures")
    assert posted.cookie is None
    assert count(server, url) == before + 1


def test_signing_with_a_name_spends_the_token(
    server,
    proxy,
    clock,
    tmp_path: Path,
) -> None:
    wallet = tmp_path / "wallet.json"
    signed = run("sign", petition_url(server, proxy), "--public", *signed_in("dara@example.org", wallet))
    assert signed.exit_code == 0, signed.output
    assert "Signed with your name shown to everyone." in signed.output
    spent = [token for token in json.loads(wallet.read_text())["credentials"].values() if token["status"] == "spent"]
    assert len(spent) == 1


def _another_key(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    public = blindrsa.PrivateKey.generate(1024).public
    return [{**key, "key_id": public.key_id(), "spki": b64e(public.spki())} for key in keys]


def test_a_key_shown_to_one_account_only_is_refused_before_anything_is_sent(
    server, proxy, clock, tmp_path: Path
) -> None:
    url = petition_url(server, proxy)
    wallet = tmp_path / "wallet.json"
    # The signed-in wallet is handed a key of its own; the cookie-less list shows everyone the real one.
    proxy.tamper["/api/v1/wallet"] = lambda state: {**state, "due": _another_key(state["due"])}
    refused = run("collect", url, *signed_in("riley@example.org", wallet))
    assert refused.exit_code == 1
    assert "differs from the one published to everyone" in refused.output
    assert not proxy.requests("POST", "/api/v1/wallet/tokens")

    # The same other key shown to everyone, in the list too: entry 0 of the log still names the real one.
    replaced: dict[str, dict[str, Any]] = {}

    def same_other(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for key in keys:
            replaced.setdefault(f"{key['petition_id']}|{key.get('purpose', 'sign')}", _another_key([key])[0])
        return [replaced[f"{key['petition_id']}|{key.get('purpose', 'sign')}"] for key in keys]

    proxy.tamper["/api/v1/wallet"] = lambda state: {**state, "due": same_other(state["due"])}
    proxy.tamper["/api/v1/anonymous/keys"] = same_other
    refused = run("collect", url, "--wallet", str(wallet))
    assert refused.exit_code == 1, refused.output
    assert "not the key its signature log committed to" in refused.output
    assert not proxy.requests("POST", "/api/v1/wallet/tokens")

    # Honest answers: collected; queued; then, before sending, the published key changes: nothing is sent.
    proxy.tamper.clear()
    collected = run("collect", url, "--wallet", str(wallet))
    assert collected.exit_code == 0, collected.output
    assert run("sign", url, "--anonymous", "--accept-small-crowd", "--wallet", str(wallet)).exit_code == 0
    assert (
        run("comment", url, "--anonymous", "--accept-small-crowd", "--text", "Yes.", "--wallet", str(wallet)).exit_code
        == 0
    )
    proxy.tamper["/api/v1/anonymous/keys"] = _another_key
    clock[0] = T0 + 13 * 3600
    held_back = run("send", "--wallet", str(wallet))
    assert held_back.exit_code == 1
    assert "signing key your account was given differs from the one published to everyone" in held_back.output
    assert "discussion key your account was given differs" in held_back.output
    assert not proxy.requests("POST", "/api/v1/anonymous/signatures")
    assert not proxy.requests("POST", "/api/v1/anonymous/comments")
    assert len(json.loads(wallet.read_text())["outbox"]) == 2  # still queued, for a later run or for evidence

    # Only the discussion key differs: the signature goes, the comment stays held back.
    proxy.tamper["/api/v1/anonymous/keys"] = lambda keys: [
        _another_key([key])[0] if key.get("purpose") == "discuss" else key for key in keys
    ]
    partly = run("send", "--wallet", str(wallet))
    assert partly.exit_code == 1 and "Sent your anonymous signature" in partly.output
    assert "discussion key your account was given differs" in partly.output
    assert not proxy.requests("POST", "/api/v1/anonymous/comments")


def test_a_discussion_key_shown_to_one_account_is_refused_by_entry_0(server, proxy, clock, tmp_path: Path) -> None:
    """Entry 0 commits the discussion key too: a server that shows one account a discussion key of its own, in the
    wallet answer and the cookie-less list alike (it can tell connections apart), is refused before anything is
    blinded; the signing key, honest, is not enough to let the discussion credential through."""
    url = petition_url(server, proxy)
    petition_id = int(url.rstrip("/").split("/")[-1])
    wallet = tmp_path / "wallet.json"
    (other,) = _another_key([{"petition_id": petition_id, "purpose": "discuss"}])

    def own_discussion_key(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**key, "key_id": other["key_id"], "spki": other["spki"]}
            if key.get("petition_id") == petition_id and key.get("purpose") == "discuss"
            else key
            for key in keys
        ]

    proxy.tamper["/api/v1/wallet"] = lambda state: {**state, "due": own_discussion_key(state["due"])}
    proxy.tamper["/api/v1/anonymous/keys"] = own_discussion_key
    refused = run("collect", url, *signed_in(new_member(server, "sasha"), wallet))
    assert refused.exit_code == 1, refused.output
    assert (
        f"Refusing petition {petition_id}: its discussion key is not the key its signature log committed to"
        in " ".join(refused.output.split())
    )
    assert not proxy.requests("POST", "/api/v1/wallet/tokens")

    proxy.tamper.clear()
    collected = run("collect", url, "--wallet", str(wallet))
    assert collected.exit_code == 0, collected.output
    log = live_server.get_json(server, f"/api/v1/petitions/{petition_id}/log")
    entry = json.loads(
        b64url.decode(  # without padding: entry 0's length decides whether base64 would need any
            live_server.get_json(server, f"/api/v1/petitions/{petition_id}/log/entries?start=0&limit=1")["entries"][0][
                "entry"
            ]
        )
    )
    assert (
        entry["discussion_key_id"]
        == json.loads(wallet.read_text())["keys"][f"{proxy.base_url}|{petition_id}|discuss"]
        != log["issuing_key"]["key_id"]
    )


def test_a_key_that_changes_after_first_use_is_refused(server, proxy, clock, tmp_path: Path) -> None:
    url = petition_url(server, proxy)
    wallet = tmp_path / "wallet.json"
    collected = run("collect", url, *signed_in(new_member(server, "quinn"), wallet))
    assert collected.exit_code == 0, collected.output
    remembered = json.loads(wallet.read_text())["keys"]
    petition_id = int(url.rstrip("/").split("/")[-1])
    held = {
        (item["petition_id"], item["purpose"]): item["key_id"]
        for item in json.loads(wallet.read_text())["credentials"].values()
    }
    # Each key accepted is remembered per petition and purpose, beside the credentials; and, for the deployment,
    # that its entry 0 names the discussion key (a later petition's entry 0 without it is refused).
    assert remembered == {
        **{f"{proxy.base_url}|{petition}|{purpose}": key_id for (petition, purpose), key_id in held.items()},
        f"{proxy.base_url}|deployment|discussion_key_id": "named in entry 0",
    }
    assert (petition_id, "sign") in held and (petition_id, "discuss") in held
    assert run("sign", url, "--anonymous", "--accept-small-crowd", "--wallet", str(wallet)).exit_code == 0

    # A server that later shows a new key to everyone, list, log and all, stands here as a wallet that accepted
    # another key first: the key now shown is not the one accepted, and nothing goes.
    stored = json.loads(wallet.read_text())
    other = _another_key([{"petition_id": petition_id}])[0]["key_id"]
    stored["keys"][f"{proxy.base_url}|{petition_id}|sign"] = other
    wallet.write_text(json.dumps(stored))
    clock[0] = T0 + 13 * 3600
    refused = run("send", "--wallet", str(wallet))
    assert refused.exit_code == 1, refused.output
    assert "signing key changed since this wallet first accepted it" in refused.output
    assert not proxy.requests("POST", "/api/v1/anonymous/signatures")
    assert len(json.loads(wallet.read_text())["outbox"]) == 1
    assert json.loads(wallet.read_text())["keys"][f"{proxy.base_url}|{petition_id}|sign"] == other  # kept

    # The key it accepted first is the one shown: sent.
    stored = json.loads(wallet.read_text())
    stored["keys"][f"{proxy.base_url}|{petition_id}|sign"] = held[(petition_id, "sign")]
    wallet.write_text(json.dumps(stored))
    sent = run("send", "--wallet", str(wallet))
    assert sent.exit_code == 0 and "Sent your anonymous signature" in sent.output, sent.output


def test_a_wallet_file_of_the_first_format_is_read_as_signing_tokens(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    path.write_text(
        json.dumps(
            {
                "https://host|chen@example.org|7": {
                    "petition_id": 7,
                    "key_id": "k",
                    "spki": "s",
                    "message": "m",
                    "signature": "x",
                    "status": "held",
                }
            }
        )
    )
    wallet = client.load_wallet(path)
    assert wallet["credentials"]["https://host|chen@example.org|7|sign"]["purpose"] == "sign"
    held = client.held(wallet, "https://host", "chen@example.org", 7, "sign")
    assert held is not None and held["status"] == "held"
    assert client.known_email(wallet, "https://host") == "chen@example.org"
    client.save_wallet(path, wallet)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert client.load_wallet(path) == wallet


def test_bad_input_is_a_clear_message(server, proxy, tmp_path: Path) -> None:
    wrong = run("sign", "not a url", *signed_in("chen@example.org", tmp_path / "w.json"))
    assert wrong.exit_code == 1 and "Give the petition's address" in wrong.output
    refused = run(
        "collect",
        petition_url(server, proxy),
        "--email",
        "chen@example.org",
        "--password",
        "wrong password",
        "--wallet",
        str(tmp_path / "w.json"),
    )
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    named = run("comment", petition_url(server, proxy), "--text", "hello", "--wallet", str(tmp_path / "w.json"))
    assert named.exit_code == 2 and "anonymous comments only" in named.output


def test_an_expired_session_signs_in_again_with_the_password_from_the_environment(
    server, proxy, clock, tmp_path: Path
) -> None:
    url = petition_url(server, proxy)
    wallet = tmp_path / "wallet.json"
    assert run("collect", url, *signed_in("ben@example.org", wallet)).exit_code == 0
    jar = http.cookiejar.LWPCookieJar()
    jar.load(str(client.jar_path(wallet)), ignore_discard=True)
    (session,) = [cookie for cookie in jar if cookie.name == SESSION_COOKIE]
    session.value = "a-session-the-server-no-longer-knows"
    jar.save(str(client.jar_path(wallet)), ignore_discard=True)
    again = CliRunner().invoke(
        cli,
        ["client", "collect", url, "--wallet", str(wallet)],
        env={"UNDERSIGNED_PASSWORD": DEMO_PASSWORD},
        catch_exceptions=False,
    )
    assert again.exit_code == 0, again.output
    assert len(proxy.requests("POST", "/api/v1/sessions")) == 2


def test_send_wait_sends_each_at_its_time_then_stops(
    server,
    proxy,
    clock,
    monkeypatch,
    tmp_path: Path,
) -> None:
    wallet = tmp_path / "wallet.json"
    urls = [petition_url(server, proxy, title) for title in (PETITION, OTHER_PETITION)]
    assert run("collect", urls[0], *signed_in("admin@example.org", wallet)).exit_code == 0
    for url in urls:
        assert (
            run("sign", url, "--anonymous", "--accept-small-crowd", "--within", "2", "--wallet", str(wallet)).exit_code
            == 0
        )
    dues = sorted(item["due"] for item in json.loads(wallet.read_text())["outbox"])
    assert all(T0 + 2 * 3600 / 6 <= due <= T0 + 2 * 3600 for due in dues)
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(client, "sleep", sleep)
    sent = run("send", "--wait", "--wallet", str(wallet))
    assert sent.exit_code == 0, sent.output
    assert sent.output.count("Sent your anonymous signature") == 2 and "Waiting: 2 queued" in sent.output
    assert clock[0] >= dues[1] and len(waited) >= 2 and max(waited) <= 3600  # wakes at least hourly
    assert all(seen.cookie is None for seen in proxy.requests("POST", "/api/v1/anonymous/signatures"))
    assert json.loads(wallet.read_text())["outbox"] == []


def test_keys_are_checked_under_a_pinned_log_key_and_the_witnesses_named(tmp_path: Path) -> None:
    witness = Ed25519PrivateKey.generate()
    witness_key = notes.verifier_key("union.example.org", witness.public_key())
    (tmp_path / "witness.key").write_text(base64.b64encode(witness.private_bytes_raw()).decode())
    live = live_server.serve_demo(tmp_path / "witnessed.db", log_witnesses=[witness_key])
    try:
        with proxy_to(live) as proxy:
            url = petition_url(live, proxy)
            wallet = tmp_path / "wallet.json"
            lagging = run("collect", url, "--witness", witness_key, *signed_in("chen@example.org", wallet))
            assert lagging.exit_code == 1 and "cosigned by union.example.org" in lagging.output
            stranger = notes.verifier_key(
                live.base_url.removeprefix("http://"), Ed25519PrivateKey.generate().public_key()
            )
            pinned = run("collect", url, "--log-key", stranger, "--wallet", str(wallet))
            assert pinned.exit_code == 1 and "checkpoint does not verify" in pinned.output
            assert not proxy.requests("POST", "/api/v1/wallet/tokens")

            # Every open petition's log: the discussion keys the wallet collects are held to their logs' entry 0
            # too, under a cosigned checkpoint.
            listing = live_server.get_json(live, "/api/v1/petitions?state=open")["items"]
            for item in listing:
                witnessed = CliRunner().invoke(
                    cli,
                    [
                        "witness",
                        f"{live.base_url}/petitions/{item['id']}",
                        "--name",
                        "union.example.org",
                        "--key",
                        str(tmp_path / "witness.key"),
                        "--state",
                        str(tmp_path / "witnessed.json"),
                    ],
                )
                assert witnessed.exit_code == 0, witnessed.output
            log_key = live_server.get_json(live, f"/api/v1/petitions/{url.rsplit('/', 1)[1]}/log")["log_key"]
            collected = run(
                "collect", url, "--witness", witness_key, "--log-key", str(log_key), "--wallet", str(wallet)
            )
            assert collected.exit_code == 0, collected.output
            assert len(proxy.requests("POST", "/api/v1/wallet/tokens")) == 1
            remembered = json.loads((tmp_path / "verified.json").read_text())
            assert remembered[url]["log_key"] == log_key
    finally:
        live.stop()


def _comments(server: live_server.LiveServer, petition_id: int) -> list[dict[str, Any]]:
    listing = live_server.get_json(server, f"/api/v1/petitions/{petition_id}/comments?sort=newest&limit=100")
    found: list[dict[str, Any]] = []
    pending = list(listing["items"])
    while pending:
        item = pending.pop()
        found.append(item)
        pending += item.get("replies") or []
    return found


def test_an_anonymous_comment_is_queued_then_sent_without_cookies_under_its_pseudonym(
    server, proxy, clock, tmp_path: Path
) -> None:
    url = petition_url(server, proxy)
    petition_id = int(url.rsplit("/", 1)[1])
    wallet = tmp_path / "wallet.json"
    collected = run("collect", url, *signed_in("ana@example.org", wallet))
    assert collected.exit_code == 0 and "a discussion credential" in collected.output, collected.output

    queued = run(
        "comment",
        url,
        "--anonymous",
        "--accept-small-crowd",
        "--text",
        "Bands would show the **gap** in support.",
        "--wallet",
        str(wallet),
    )
    assert queued.exit_code == 0, queued.output
    credential = client.held(client.load_wallet(wallet), proxy.base_url, "ana@example.org", petition_id, "discuss")
    name = client.pseudonym(credential["message"])  # type: ignore[index]
    assert f"Your comment will carry the name {name}" in queued.output
    assert "cannot be matched with your sign-in" in queued.output
    assert not proxy.requests("POST", "/api/v1/anonymous/comments")

    (item,) = json.loads(wallet.read_text())["outbox"]
    clock[0] = item["due"] + 1
    sent = run("send", "--wallet", str(wallet))
    assert sent.exit_code == 0, sent.output
    assert f"Sent your anonymous comment on petition {petition_id}" in sent.output and name in sent.output
    assert "the server named it" not in sent.output
    (posted,) = proxy.requests("POST", "/api/v1/anonymous/comments")
    assert posted.cookie is None
    (published,) = [comment for comment in _comments(server, petition_id) if comment["author"] == name]
    assert published["anonymous"] is True

    # A reply under the same pseudonym, then the first comment deleted: both without a cookie.
    replied = run(
        "comment",
        url,
        "--anonymous",
        "--accept-small-crowd",
        "--text",
        "And in sales.",
        "--reply-to",
        str(published["id"]),
        "--now",
        "--wallet",
        str(wallet),
    )
    assert replied.exit_code == 0, replied.output
    assert "Sending now lets the server match this comment with your sign-in" in replied.output
    assert "within seconds" not in replied.output  # no sign-in in this run
    reply = [comment for comment in _comments(server, petition_id) if comment["parent_id"] == published["id"]]
    assert [comment["author"] for comment in reply] == [name]
    edited = run(
        "edit-comment",
        url,
        str(published["id"]),
        "--text",
        "Bands would show the gap.",
        "--now",
        "--wallet",
        str(wallet),
    )
    assert edited.exit_code == 0 and f"Edited comment {published['id']}" in edited.output, edited.output
    (changed,) = [comment for comment in _comments(server, petition_id) if comment["id"] == published["id"]]
    assert "<strong>" not in changed["body_html"] and changed["edited_at"]
    deleted = run("delete-comment", url, str(published["id"]), "--now", "--wallet", str(wallet))
    assert deleted.exit_code == 0, deleted.output
    assert f"Deleted comment {published['id']}" in deleted.output
    assert all(seen.cookie is None for seen in proxy.seen if "/anonymous/comments" in seen.path)
    assert json.loads(wallet.read_text())["outbox"] == []
    assert len(proxy.requests("POST", "/api/v1/sessions")) == 1


# One wallet on every device (issue 19) -------------------------------------------------------------------------

VECTOR = json.loads((Path(__file__).parent / "data" / "wallet" / "derive_vector.json").read_text())


def new_member(server: live_server.LiveServer, local_part: str) -> str:
    """A worker of the demo organization who has collected nothing yet, with the demo password."""
    from datetime import UTC, datetime

    from app.core.security import hash_password
    from app.models.accounts import User

    now = datetime.now(UTC)
    app = server.app
    with app.state.sessionmaker.begin() as db:
        db.add(
            User(
                email=f"{local_part}@example.org",
                display_name=local_part.title(),
                email_verified_at=now,
                created_at=now,
                roles=[],
                password_hash=hash_password(DEMO_PASSWORD),
            )
        )
    return f"{local_part}@example.org"


def library_session(proxy: Proxy, email: str) -> client.Session:
    """Another device of the member, driven through the client library (a browser would do the same calls)."""
    return client.Session(
        client.Connection(proxy.base_url),
        client.load_wallet(Path("/nonexistent")),
        email=email,
        password=lambda: DEMO_PASSWORD,
    )


def credentials(wallet: Path, purpose: str | None = None) -> dict[tuple[int, str], dict[str, Any]]:
    return {
        (item["petition_id"], item["purpose"]): item
        for item in json.loads(wallet.read_text())["credentials"].values()
        if purpose is None or item["purpose"] == purpose
    }


def test_collect_starts_a_wallet_and_its_recovery_code_brings_the_same_credentials_to_another_computer(
    server, proxy, clock, tmp_path: Path
) -> None:
    url = petition_url(server, proxy)
    email = new_member(server, "erin")
    laptop, desktop = tmp_path / "laptop.json", tmp_path / "desktop.json"
    started = run("collect", url, *signed_in(email, laptop))
    assert started.exit_code == 0, started.output
    assert "Started your wallet" in started.output and "`undersigned client wallet export`" in started.output
    assert started.output.count("a signing token and a discussion credential") == 2
    secret = client.wallet_secret(client.load_wallet(laptop), proxy.base_url, email)
    assert secret is not None
    assert len(proxy.requests("POST", "/api/v1/wallet/check")) == 1
    held = credentials(laptop)
    assert len(held) == 4 and all(item["status"] == "held" and "inv" not in item for item in held.values())
    # What the server learnt of the wallet: its check value, nothing that opens it.
    session = library_session(proxy, email)
    assert client.wallet_state(session)["wallet_check"] == b64e(derive.check(secret))

    seen = len(proxy.seen)
    exported = run("wallet", "export", "--wallet", str(laptop))
    assert exported.exit_code == 0, exported.output
    assert len(proxy.seen) == seen  # the code is printed here, and sent nowhere
    code = exported.output.splitlines()[0]
    assert code == derive.recovery_code(secret)
    assert "whoever has it can rebuild your anonymous credentials" in exported.output

    # Another computer without the wallet: refused in plain words, nothing collected, no second wallet started.
    refused = run("collect", url, *signed_in(email, desktop))
    assert refused.exit_code == 1
    assert "wallet was started on another device" in refused.output
    assert "undersigned client wallet import" in refused.output and "Traceback" not in refused.output
    assert credentials(desktop) == {} and len(proxy.requests("POST", "/api/v1/wallet/check")) == 1

    # A typo, and another account's code, change nothing.
    typo = ("1" if code[0] != "1" else "2") + code[1:]
    mistyped = CliRunner().invoke(
        cli, ["client", "wallet", "import", url, "--stdin", "--wallet", str(desktop)], input=typo + "\n"
    )
    assert mistyped.exit_code == 1 and "has a typo" in mistyped.output and "Nothing was changed" in mistyped.output
    foreign = CliRunner().invoke(
        cli,
        ["client", "wallet", "import", url, "--stdin", "--wallet", str(desktop)],
        input=derive.recovery_code(derive.new_secret()) + "\n",
    )
    assert foreign.exit_code == 1 and "of another wallet, not of the account erin@example.org" in foreign.output
    assert client.wallet_secret(client.load_wallet(desktop), proxy.base_url, email) is None

    # The right code, typed at the hidden prompt: the same credentials, and no new issuance.
    imported = CliRunner().invoke(
        cli, ["client", "wallet", "import", url, "--wallet", str(desktop)], input=code.lower().replace("-", " ") + "\n"
    )
    assert imported.exit_code == 0, imported.output
    assert code not in imported.output and "Your wallet for erin@example.org is here now" in imported.output
    issued_before = len(proxy.requests("POST", "/api/v1/wallet/tokens"))
    collected = run("collect", url, "--wallet", str(desktop))
    assert collected.exit_code == 0, collected.output
    assert len(proxy.requests("POST", "/api/v1/wallet/tokens")) == issued_before
    again = credentials(desktop)
    assert {key: (item["message"], item["signature"]) for key, item in again.items()} == {
        key: (item["message"], item["signature"]) for key, item in held.items()
    }
    assert (
        run(
            "wallet",
            "import",
            url,
            "--stdin",
            "--wallet",
            str(desktop),
        ).exit_code
        == 1
    )  # empty stdin


def test_a_recovery_code_gives_the_credentials_the_shared_derivation_gives(
    server, proxy, clock, tmp_path: Path
) -> None:
    """The vector's secret, started as a browser would start it, imported from its recovery code: the command
    line's credentials are exactly derive.py's (and so derive.js's) for each petition key."""
    url = petition_url(server, proxy)
    email = new_member(server, "fay")
    secret = bytes.fromhex(VECTOR["secret"])
    assert derive.recovery_code(secret) == VECTOR["recovery_code"] and derive.check(secret).hex() == VECTOR["check"]
    browser = library_session(proxy, email)
    client.register_secret(browser, secret)
    assert client.wallet_state(browser)["wallet_check"] == b64e(bytes.fromhex(VECTOR["check"]))

    wallet = tmp_path / "wallet.json"
    imported = CliRunner().invoke(
        cli,
        ["client", "wallet", "import", url, "--stdin", *signed_in(email, wallet)],
        input=VECTOR["recovery_code"] + "\n",
    )
    assert imported.exit_code == 0, imported.output
    collected = run("collect", url, "--wallet", str(wallet))
    assert collected.exit_code == 0, collected.output
    held = credentials(wallet)
    assert len(held) == 4
    for (petition_id, purpose), item in held.items():
        public = blindrsa.PublicKey.from_spki(client._b64d(item["spki"]))
        expected = derive.credential(
            secret, purpose=purpose, petition_id=petition_id, key_id=item["key_id"], public=public
        )
        assert client._b64d(item["message"]) == expected.message, (petition_id, purpose)
        blindrsa.verify(public, expected.message, client._b64d(item["signature"]))


def test_a_device_that_loses_the_race_to_collect_finalizes_the_kept_replies(
    server, proxy, clock, tmp_path: Path
) -> None:
    from app.clients.keycheck import KeyCheck

    url = petition_url(server, proxy)
    email = new_member(server, "gil")
    secret = derive.new_secret()
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    for path in (first, second):
        wallet = client.load_wallet(path)
        client.keep_secret(wallet, proxy.base_url, email, secret)
        client.save_wallet(path, wallet)
    raced: list[Any] = []

    class Slow(client.Session):
        """This device is slow: between reading what is due and asking for it, the other device collects it."""

        def call(self, method: str, path: str, body: object | None = None):
            if method == "POST" and path == "/api/v1/wallet/tokens" and not raced:
                raced.append(run("collect", url, *signed_in(email, second)))
            return super().call(method, path, body)

    connection = client.Connection(proxy.base_url)
    wallet = client.load_wallet(first)
    session = Slow(connection, wallet, email=email, password=lambda: DEMO_PASSWORD)
    client.register_secret(session, secret)
    done = client.collect(session, wallet, keys=KeyCheck(connection, state_file=tmp_path / "verified.json"))
    (other,) = raced
    assert other.exit_code == 0 and other.output.count("a signing token and a discussion credential") == 2
    assert len(done.held) == 4 and done.elsewhere == []
    tokens = [seen for seen in proxy.requests("POST", "/api/v1/wallet/tokens")][-2:]
    assert len(tokens) == 2  # both asked; the server issued once (409 to the slow one)
    client.save_wallet(first, wallet)
    assert {key: item["signature"] for key, item in credentials(first).items()} == {
        key: item["signature"] for key, item in credentials(second).items()
    }


def _old_device_collects(proxy: Proxy, email: str) -> None:
    """A browser from before wallet secrets: random credentials, collected and kept in that browser only."""
    session = library_session(proxy, email)
    due = client.wallet_state(session)["due"]
    requests = []
    for key in due:
        public = blindrsa.PublicKey.from_spki(client._b64d(key["spki"]))
        blinded = blindrsa.blind(public, blindrsa.prepare(os.urandom(32)))
        requests.append(
            {"petition_id": key["petition_id"], "purpose": key["purpose"], "blinded_message": b64e(blinded.blinded_msg)}
        )
    status, _answer = session.call("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    assert status == 200


def test_credentials_of_an_older_wallet_are_held_elsewhere_and_sign_forfeit_signs_by_name(
    server, proxy, clock, tmp_path: Path
) -> None:
    url = petition_url(server, proxy)
    petition_id = int(url.rsplit("/", 1)[1])
    email = new_member(server, "hal")
    _old_device_collects(proxy, email)
    wallet = tmp_path / "wallet.json"
    collected = run("collect", url, *signed_in(email, wallet))
    assert collected.exit_code == 0, collected.output
    assert "Started your wallet" in collected.output
    assert collected.output.count("was collected by another device before your wallet had a secret") == 4
    assert {item["status"] for item in credentials(wallet).values()} == {"elsewhere"}

    anonymously = run("sign", url, "--anonymous", "--accept-small-crowd", "--wallet", str(wallet))
    assert anonymously.exit_code == 1 and "only that device holds it" in anonymously.output
    assert "--forfeit" in anonymously.output
    by_name = run("sign", url, "--wallet", str(wallet))
    assert by_name.exit_code == 1 and "add --forfeit" in by_name.output
    both = run("sign", url, "--anonymous", "--forfeit", "--wallet", str(wallet))
    assert both.exit_code == 2

    ledger = f"/api/v1/petitions/{petition_id}/anonymous-signatures"
    before = live_server.get_json(server, ledger)["forfeited"]
    count_before = count(server, url)
    forfeited = run("sign", url, "--forfeit", "--wallet", str(wallet))
    assert forfeited.exit_code == 0, forfeited.output
    assert "Signed with your name shown to the organizers only." in forfeited.output
    assert "You gave up signing this petition anonymously: the signature log counts one forfeit" in forfeited.output
    assert live_server.get_json(server, ledger)["forfeited"] == before + 1
    assert count(server, url) == count_before + 1
    # The forfeited token is no longer kept for any device.
    state = client.wallet_state(library_session(proxy, email))
    assert (petition_id, "sign") not in {(item["petition_id"], item["purpose"]) for item in state["issued"]}


def test_sign_forfeit_with_the_token_held_here_spends_it_and_gives_nothing_up(
    server, proxy, clock, tmp_path: Path
) -> None:
    url = petition_url(server, proxy, OTHER_PETITION)
    petition_id = int(url.rsplit("/", 1)[1])
    email = new_member(server, "ida")
    wallet = tmp_path / "wallet.json"
    ledger = f"/api/v1/petitions/{petition_id}/anonymous-signatures"
    before = live_server.get_json(server, ledger)
    signed = run("sign", url, "--forfeit", "--public", *signed_in(email, wallet))
    assert signed.exit_code == 0, signed.output
    assert "Started your wallet" in signed.output  # the token was due: collected first, then spent
    assert "This wallet held the token, so it was spent and nothing was given up." in signed.output
    after = live_server.get_json(server, ledger)
    assert (after["forfeited"], after["spent_by_name"]) == (before["forfeited"], before["spent_by_name"] + 1)
    assert credentials(wallet, "sign")[(petition_id, "sign")]["status"] == "spent"


def test_a_computer_without_the_wallet_signs_by_name_with_forfeit(server, proxy, clock, tmp_path: Path) -> None:
    url = petition_url(server, proxy)
    petition_id = int(url.rsplit("/", 1)[1])
    email = new_member(server, "jo")
    assert run("collect", url, *signed_in(email, tmp_path / "phone.json")).exit_code == 0
    elsewhere = tmp_path / "elsewhere.json"
    refused = run("sign", url, *signed_in(email, elsewhere))
    assert refused.exit_code == 1 and "add --forfeit to `client sign`" in refused.output
    ledger = f"/api/v1/petitions/{petition_id}/anonymous-signatures"
    before = live_server.get_json(server, ledger)["forfeited"]
    signed = run("sign", url, "--forfeit", "--wallet", str(elsewhere))
    assert signed.exit_code == 0, signed.output
    assert "You gave up signing this petition anonymously" in signed.output
    assert live_server.get_json(server, ledger)["forfeited"] == before + 1
    assert client.wallet_secret(client.load_wallet(elsewhere), proxy.base_url, email) is None


def test_random_credentials_of_a_wallet_file_from_before_secrets_keep_working(
    server, proxy, clock, tmp_path: Path
) -> None:
    """A file the earlier client wrote: random credentials, one of them blinded but its reply never received."""
    url = petition_url(server, proxy)
    petition_id = int(url.rsplit("/", 1)[1])
    email = new_member(server, "kim")
    session = library_session(proxy, email)
    requests, old = [], {}
    for key in client.wallet_state(session)["due"]:
        public = blindrsa.PublicKey.from_spki(client._b64d(key["spki"]))
        message = blindrsa.prepare(os.urandom(32))
        blinded = blindrsa.blind(public, message)
        old[(key["petition_id"], key["purpose"])] = (key, public, message, blinded)
        requests.append(
            {"petition_id": key["petition_id"], "purpose": key["purpose"], "blinded_message": b64e(blinded.blinded_msg)}
        )
    status, answer = session.call("POST", "/api/v1/wallet/tokens", {"tokens": requests})
    assert status == 200
    credentials_before = {}
    for item in answer["tokens"]:
        key, public, message, blinded = old[(item["petition_id"], item["purpose"])]
        record = {
            "petition_id": key["petition_id"],
            "purpose": key["purpose"],
            "key_id": key["key_id"],
            "spki": key["spki"],
            "message": b64e(message),
        }
        if (item["petition_id"], item["purpose"]) == (petition_id, "discuss"):
            record.update(inv=str(blinded.inv), status="blinded")  # the reply was lost on the way
        else:
            signature = blindrsa.finalize(public, message, client._b64d(item["blind_signature"]), blinded.inv)
            record.update(signature=b64e(signature), status="held")
        credentials_before[f"{proxy.base_url}|{email}|{item['petition_id']}|{item['purpose']}"] = record
    wallet = tmp_path / "wallet.json"
    wallet.write_text(
        json.dumps(
            {
                "version": 2,
                "accounts": {proxy.base_url: {"email": email}},
                "credentials": credentials_before,
                "outbox": [],
            }
        )
    )

    collected = run("collect", url, *signed_in(email, wallet))
    assert collected.exit_code == 0, collected.output
    assert f"Petition {petition_id}: a discussion credential." in collected.output
    assert "Started your wallet" not in collected.output
    held = credentials(wallet)
    assert {item["status"] for item in held.values()} == {"held"}
    assert all(
        item["message"] == credentials_before[slot]["message"]
        for slot, item in json.loads(wallet.read_text())["credentials"].items()
    )
    before = count(server, url)
    signed = run("sign", url, "--anonymous", "--accept-small-crowd", "--now", "--wallet", str(wallet))
    assert signed.exit_code == 0 and "Sent your anonymous signature" in signed.output, signed.output
    assert count(server, url) == before + 1


def test_a_code_for_an_account_with_no_wallet_yet_is_refused(
    server,
    proxy,
    clock,
    tmp_path: Path,
) -> None:
    url = petition_url(server, proxy)
    email = new_member(server, "lee")
    wallet = tmp_path / "wallet.json"
    refused = CliRunner().invoke(
        cli,
        ["client", "wallet", "import", url, "--stdin", *signed_in(email, wallet)],
        input=derive.recovery_code(derive.new_secret()) + "\n",
    )
    assert refused.exit_code == 1
    assert "The account lee@example.org has no wallet yet, so this code is not its recovery code" in refused.output
    assert client.wallet_secret(client.load_wallet(wallet), proxy.base_url, email) is None
    assert not proxy.requests("POST", "/api/v1/wallet/check")
