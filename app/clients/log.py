"""`undersigned verify` and `undersigned witness`: checking a petition's log from outside, with nothing but its
public API (or files saved from it), and remembering what was seen so a later rewrite cannot go unnoticed."""

from __future__ import annotations

import base64
import functools
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.clients.anonymous import ClientError, Connection, parse_petition_url
from app.core import b64url, merkle
from app.log import checkpoint as notes
from app.log import gossip as gossiping
from app.log.verifier import Report, check, compare
from app.log.witness import Post, WitnessError

# GET a path of the deployment without cookies: (status, JSON body) for the API, (status, text) for a page.
Fetch = Callable[[str, bool], tuple[int, Any]]


def _fetcher(base_url: str) -> Fetch:
    connection = Connection(base_url)

    def fetch(path: str, page: bool) -> tuple[int, Any]:
        if not page:
            return connection.anonymous("GET", path)
        request = urllib.request.Request(base_url.rstrip("/") + path, headers={"Accept": "text/html"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, ""
        except (urllib.error.URLError, OSError) as error:
            raise ClientError(f"Could not reach {base_url}: {error}") from None

    return fetch


def _bytes(text: str) -> bytes:
    """A binary field of the API: base64url without padding, as it is served; logs saved before, in standard
    base64, still read (the decoder takes both alphabets, with or without padding)."""
    try:
        return b64url.decode(text)
    except ValueError:
        raise ClientError("The server sent a value that is not base64url.") from None


def _get(connection: Connection | Fetch, path: str) -> Any:
    status, answer = (
        connection.anonymous("GET", path) if isinstance(connection, Connection) else connection(path, False)
    )
    if status != 200:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        raise ClientError(message or f"{path} answered {status}")
    return answer


# What reading a malformed answer raises: a key missing, a value of the wrong type, a note that does not parse.
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, notes.CheckpointError)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def refusing_malformed(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A server (or a saved file) can answer anything: an answer of the wrong shape is refused in words, as a
    ClientError (the command line prints it and exits 1), never a traceback."""

    def wrap(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def refusing(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return function(*args, **kwargs)
            except ClientError:
                raise
            except MALFORMED as error:
                raise ClientError(
                    f"{what} is malformed ({type(error).__name__}: {str(error)[:120]}), so the log "
                    "cannot be checked: nothing was trusted."
                ) from None

        return refusing

    return wrap


PAGE_FIGURES = {
    "signature-count": "signature_count",
    "log-tally": "log_tally",
    "anonymous-signatures": "anonymous_signatures",
    "tokens-issued": "tokens_issued",
    "spent-by-name": "spent_by_name",
    "forfeited": "forfeited",
}


def page_figures(html: str) -> dict[str, int]:
    """The figures the petition page shows, from its log-check paragraph's data attributes (the same values its
    text prints)."""
    found = re.search(r'<p class="meta log-check"([^>]*)>', html)
    if not found:
        return {}
    figures = {}
    for attribute, name in PAGE_FIGURES.items():
        value = re.search(rf'data-{attribute}="(\d+)"', found.group(1))
        if value:
            figures[name] = int(value.group(1))
    return figures


def _reader_key(petition_url: str) -> str:
    """What this machine's state is filed under: the address the person typed, not one the server names."""
    target = parse_petition_url(petition_url)
    return f"{target.base_url}/petitions/{target.petition_id}"


@refusing_malformed("The server's answer")
def download(petition_url: str, fetch: Fetch | None = None) -> dict[str, Any]:
    """The log's head, every entry (with the index the server gave it) and every checkpoint, and the figures the
    petition's API and page publish, all read without cookies."""
    target = parse_petition_url(petition_url)
    connection = fetch or _fetcher(target.base_url)
    base = f"/api/v1/petitions/{target.petition_id}/log"
    head = _get(connection, base)
    if not isinstance(head.get("size"), int) or head["size"] < 0:
        raise ClientError(f"The server's answer to {base} is malformed: its size is not a count of entries.")
    petition = _get(connection, f"/api/v1/petitions/{target.petition_id}")
    status, html = connection(f"/petitions/{target.petition_id}", True)
    entries: list[str] = []
    indices: list[int] = []
    while len(entries) < head["size"]:
        page = _get(connection, f"{base}/entries?start={len(entries)}&limit=1000")
        if not page["entries"]:
            break
        entries += [item["entry"] for item in page["entries"]]
        indices += [item["index"] for item in page["entries"]]
    checkpoints: list[str] = []
    after = 0
    while True:
        page = _get(connection, f"{base}/checkpoints?after={after}&limit=1000")["checkpoints"]
        if not page:
            break
        checkpoints += page
        size = notes.parse(page[-1])[0].size
        if size <= after:
            break  # a page that does not advance: a server repeating itself would be read forever
        after = size
    return {
        "url": _reader_key(petition_url),
        "petition_id": target.petition_id,
        "head": head,
        "entries": entries[: head["size"]],
        "indices": indices[: head["size"]],
        "checkpoints": checkpoints,
        "beyond": max(len(entries) - head["size"], 0),
        "published": {
            "the petition API": {"signature_count": petition.get("signature_count")},
            "the petition page": page_figures(html) if status == 200 else {},
        },
        "anonymous": _anonymous_api(connection, target.petition_id),
    }


def _optional(connection: Fetch, path: str) -> Any:
    """An answer that may be a 404 (a petition that takes no anonymous signatures): None then."""
    status, answer = connection(path, False)
    if status == 404:
        return None
    if status != 200:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        raise ClientError(message or f"{path} answered {status}")
    return answer


def _anonymous_api(connection: Fetch, petition_id: int) -> dict[str, Any]:
    """What the anonymous-signing API publishes for the petition: its ledger of tokens with its counts, the
    anonymity set, and the petition's entry in the cookie-less key list."""
    ledger = _optional(connection, f"/api/v1/petitions/{petition_id}/anonymous-signatures?limit=5000")
    tokens: list[list[str]] = []
    while ledger is not None:
        tokens += [[item["message"], item["signature"]] for item in ledger.pop("entries")]
        cursor = ledger.get("next_cursor")
        if not cursor:
            break
        page = _get(connection, f"/api/v1/petitions/{petition_id}/anonymous-signatures?limit=5000&cursor={cursor}")
        tokens += [[item["message"], item["signature"]] for item in page["entries"]]
        ledger["next_cursor"] = page.get("next_cursor")
    keys = [
        key
        for key in _get(connection, "/api/v1/anonymous/keys")
        if key.get("petition_id") == petition_id and key.get("purpose") in PURPOSES
    ]
    return {
        "ledger": ledger,
        "tokens": tokens,
        "anonymity": _optional(connection, f"/api/v1/petitions/{petition_id}/anonymity"),
        "keys": keys,
    }


# The key list's purposes, each with the field of entry 0 that commits its key and what the key is called.
PURPOSES = {"sign": ("key_id", "signing key"), "discuss": ("discussion_key_id", "discussion key")}


def save(log: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log.json").write_text(json.dumps(log, indent=1))


def load(directory: Path) -> dict[str, Any]:
    path = directory / "log.json"
    if not path.exists():
        raise ClientError(f"No saved log in {directory} (save one with --save).")
    return json.loads(path.read_text())


def _state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1, sort_keys=True))


def read_policy(path: Path) -> list[str]:
    """A witness policy file: one witness verifier key per line (name+keyid+base64key); blank lines and lines
    starting with # are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ClientError(f"Could not read the witness policy {path}: {error.strerror}.") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _same_key(first: str, second: str) -> bool:
    """Two verifier keys of the same log key (one may name the deployment, the other the log's origin)."""
    try:
        return notes._raw(notes.parse_verifier_key(first)[1]) == notes._raw(notes.parse_verifier_key(second)[1])
    except notes.CheckpointError:
        return False


@refusing_malformed("The log's data")
def verify(
    log: dict[str, Any],
    state_file: Path,
    *,
    witnesses: list[str] | None = None,
    quorum: int = 0,
    gossip: Sequence[str] = (),
    post: Post | None = None,
    fetch: Fetch | None = None,
) -> Report:
    """Check a downloaded log against what this machine saw before (log key, earlier checkpoints), every figure
    the page and the API publish against the log, and, with `quorum`, that many of `witnesses` cosigned it.
    With `gossip`, a log that passes is then sent to each witness named (app/log/gossip.py); `fetch` reaches the
    server again when a witness has seen more of the log (None offline)."""
    head = log["head"]
    state = _state(state_file)
    known = state.get(log["url"], {})
    report_problems: list[str] = []
    if known.get("log_key") and not _same_key(known["log_key"], head["log_key"]):
        report_problems.append("the log's key is not the one seen before")
    try:
        trusted = dict(notes.parse_verifier_key(text) for text in (witnesses or []))
    except notes.CheckpointError as error:
        raise ClientError(f"A witness key in the policy is malformed: {error}.") from None
    indices = log.get("indices")
    if indices is not None:
        for position, index in enumerate(indices):
            if index != position:
                report_problems.append(f"the server gave entry {position} the index {index}")
                break
    if log.get("beyond"):
        report_problems.append(
            f"the server served {log['beyond']} entries beyond its latest checkpoint, as if part of the signed log"
        )
    name, public = notes.parse_verifier_key(known.get("log_key") or head["log_key"])
    seen = {int(size): base64.b64decode(root) for size, root in known.get("roots", {}).items()}
    issuing = head.get("issuing_key") or {}
    report = check(
        entries=[_bytes(entry) for entry in log["entries"]],
        checkpoints=log["checkpoints"],
        log_key=(name, public),
        issuing_key_spki=_bytes(issuing["spki"]) if issuing.get("spki") else None,
        tokens_issued=int(issuing.get("tokens_issued", 0)),
        petition_id=int(log["petition_id"]),
        seen=seen,
        spent_by_name=int(issuing.get("spent_by_name", 0)),
        forfeited=int(issuing.get("forfeited", 0)),
        witnesses=trusted,
        quorum=quorum,
    )
    shown = dict(log.get("published") or {})
    if issuing:
        shown["the log API's issuing key"] = {
            name: issuing.get(name) for name in ("anonymous_signatures", "forfeited", "tokens_issued", "spent_by_name")
        }
    anonymous = log.get("anonymous")
    if anonymous is not None:
        _anonymous_figures(report, anonymous, shown, entries=log["entries"], head=head)
    compare(report, log_counts=head.get("counts"), pending=head.get("waiting"), shown=shown)
    report.problems[:0] = report_problems
    if gossip and report.ok:
        _gossip(report, log, gossip, log_key=(name, public), witnesses=trusted, post=post, fetch=fetch)
    if report.ok:
        roots = {str(size): base64.b64encode(root).decode() for size, root in seen.items()}
        for note in log["checkpoints"]:
            checkpoint = notes.parse(note)[0]
            roots[str(checkpoint.size)] = base64.b64encode(checkpoint.root).decode()
        state[log["url"]] = {"log_key": known.get("log_key") or head["log_key"], "roots": roots}
        _write_state(state_file, state)
    return report


LEDGER_FIGURES = ("anonymous_signatures", "forfeited", "tokens_issued", "spent_by_name")


def _anonymous_figures(
    report: Report,
    anonymous: dict[str, Any],
    shown: dict[str, dict[str, object]],
    *,
    entries: list[str],
    head: dict[str, Any],
) -> None:
    """The anonymous-signing API's live figures held to the log: its counts join `compare`'s; its tokens are the
    log's anonymous entries (plus those waiting for the next batch, no more); the anonymity set is tokens issued
    less those spent or forfeited by name; the key list names the keys entry 0 commits to (the discussion key
    too, where entry 0 names it: logs opened before it did are not held to one)."""
    ledger, anonymity = anonymous.get("ledger"), anonymous.get("anonymity") or {}
    first = _entry_zero(entries)
    committed = first.get("key_id")
    issuing = head.get("issuing_key") or {}
    if ledger is not None:
        shown["the anonymous signatures API"] = {name: ledger.get(name) for name in LEDGER_FIGURES}
        if ledger.get("key_id") != committed:
            report.problems.append("the anonymous signatures API names another key than the one entry 0 commits to")
        _ledger_tokens(report, anonymous.get("tokens") or [], entries, ledger, head.get("waiting") or {})
    elif issuing:
        report.problems.append("the log names an issuing key, but the anonymous signatures API publishes none")
    for key in anonymous.get("keys") or []:
        field, what = PURPOSES.get(key.get("purpose") or "sign", PURPOSES["sign"])
        if field not in first and field != "key_id":
            continue  # a log opened before entry 0 named the discussion key: the wallets hold it to this list
        if first.get(field) is None:
            report.problems.append(f"the published key list names a {what}, but entry 0 commits to none")
        elif key.get("key_id") != first[field]:
            report.problems.append(f"the published key list names another {what} than the one entry 0 commits to")
        if field == "key_id":
            shown["the anonymous key list"] = {"tokens_issued": key.get("tokens_issued")}
    signing = anonymity.get("signing")
    if signing is not None or issuing:
        figures = ledger or issuing
        parts = [figures.get(name) for name in ("tokens_issued", "spent_by_name", "forfeited")]
        if not all(isinstance(part, int) for part in parts):
            report.problems.append("the anonymity set cannot be checked: the tokens issued are not published")
            return
        want = max(parts[0] - parts[1] - parts[2], 0)  # type: ignore[operator]
        if signing != want:
            report.problems.append(
                f"the anonymity API says an anonymous signer hides among {signing} colleagues, "
                f"but {parts[0]} tokens issued - {parts[1]} spent by name - {parts[2]} forfeited "
                f"is {want}"
            )


def _entry_zero(entries: list[str]) -> dict[str, object]:
    """Entry 0 as committed (`check` has held it to the checkpoints), or nothing when it cannot be read."""
    try:
        parsed = json.loads(_bytes(entries[0])) if entries else {}
    except (ValueError, ClientError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _ledger_tokens(
    report: Report, tokens: list[list[str]], entries: list[str], ledger: dict[str, Any], waiting: dict[str, Any]
) -> None:
    def token(message: object, signature: object) -> tuple[bytes, bytes] | None:
        try:
            return b64url.decode(str(message)), b64url.decode(str(signature))
        except ValueError:
            return None

    listed = [token(*item) for item in tokens]
    logged = []
    for raw in entries:
        try:
            entry = json.loads(_bytes(raw))
        except ValueError:
            continue  # `check` says so
        if isinstance(entry, dict) and entry.get("kind") == "signature" and entry.get("visibility") == "anonymous":
            logged.append(token(entry.get("message"), entry.get("signature")))
    if len(listed) != ledger.get("anonymous_signatures"):
        report.problems.append(
            f"the anonymous signatures API lists {len(listed)} tokens but says it holds "
            f"{ledger.get('anonymous_signatures')}"
        )
    missing = len([item for item in logged if item not in listed])
    if missing:
        report.problems.append(
            f"{missing} anonymous signature{'s' if missing != 1 else ''} in the log "
            f"{'are' if missing != 1 else 'is'} not in the anonymous signatures API's list"
        )
    extra = len(listed) - (len(logged) - missing)
    pending = waiting.get("anonymous")
    if isinstance(pending, int) and extra > pending:
        report.problems.append(
            f"the anonymous signatures API lists {extra} tokens the log does not hold, but only "
            f"{pending} wait for the next batch"
        )


def _gossip(
    report: Report,
    log: dict[str, Any],
    urls: Sequence[str],
    *,
    log_key: tuple[str, Ed25519PublicKey],
    witnesses: dict[str, Ed25519PublicKey],
    post: Post | None,
    fetch: Fetch | None,
) -> None:
    """Send the checkpoint over every entry verified to each witness; a conflicting view is a problem, and so is
    a witness that cannot be asked (the reader asked for gossip, so it does not pass silently without)."""
    entries = [_bytes(entry) for entry in log["entries"]]
    covering = [note for note in log["checkpoints"] if notes.parse(note)[0].size == len(entries)]
    if not covering:
        report.problems.append("nothing to gossip: no checkpoint covers the entries verified")
        return
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    newer = _newer(fetch, int(log["petition_id"])) if fetch is not None else None
    for url in urls:
        try:
            done = gossiping.gossip(
                url,
                note=covering[-1],
                leaves=leaves,
                log_key=log_key,
                witnesses=witnesses,
                newer=newer,
                **({"post": post} if post is not None else {}),
            )
        except WitnessError as error:
            report.problems.append(f"gossip with {url} failed: {error}")
            continue
        report.problems += done.problems
        report.gossiped.append(done.summary())


def _newer(fetch: Fetch, petition_id: int) -> Callable[[int, int], tuple[str, list[bytes]] | None]:
    """The server's checkpoint of `wanted` entries and its consistency proof from `size`, or None."""
    base = f"/api/v1/petitions/{petition_id}/log"

    def newer(size: int, wanted: int) -> tuple[str, list[bytes]] | None:
        after = size
        try:
            while True:
                page = _get(fetch, f"{base}/checkpoints?after={after}&limit=1000")["checkpoints"]
                sizes = [notes.parse(note)[0].size for note in page]
                if wanted in sizes:
                    proof = _get(fetch, f"{base}/consistency?old={size}&new={wanted}")["proof"]
                    return page[sizes.index(wanted)], [_bytes(node) for node in proof]
                if not page or max(sizes) > wanted or max(sizes) <= after:
                    return None
                after = max(sizes)
        except (ClientError, notes.CheckpointError, ValueError, KeyError, TypeError):
            return None

    return newer


def witness_key(path: Path, *, generate: bool) -> Ed25519PrivateKey:
    if not path.exists():
        if not generate:
            raise ClientError(f"No witness key at {path}: make one with --generate.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode())
        path.chmod(0o600)
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))


def witness(petition_url: str, *, name: str, key: Ed25519PrivateKey, state_file: Path) -> str:
    """Check the latest checkpoint is signed by the log and consistent with the last one seen; cosign it."""
    target = parse_petition_url(petition_url)
    connection = Connection(target.base_url)
    base = f"/api/v1/petitions/{target.petition_id}/log"
    head = _get(connection, base)
    state = _state(state_file)
    reader_key = _reader_key(petition_url)
    known = state.get(reader_key, {})
    if known.get("log_key") and not _same_key(known["log_key"], head["log_key"]):
        raise ClientError("The log's key changed since the last checkpoint witnessed: not cosigning.")
    log_key = notes.parse_verifier_key(known.get("log_key") or head["log_key"])
    signed = notes.verify(head["checkpoint"], log_key=log_key)
    if not signed.checkpoint.origin.endswith(f"/petitions/{target.petition_id}"):
        raise ClientError(f"The checkpoint is for {signed.checkpoint.origin}, not this petition: not cosigning.")
    size, root = signed.checkpoint.size, signed.checkpoint.root
    if known.get("size"):
        old_size, old_root = int(known["size"]), base64.b64decode(known["root"])
        if size < old_size:
            raise ClientError(f"The log shrank from {old_size} to {size} entries: not cosigning.")
        proof = _get(connection, f"{base}/consistency?old={old_size}&new={size}")["proof"]
        try:
            merkle.verify_consistency(old_size, size, old_root, root, [_bytes(node) for node in proof])
        except merkle.ProofError as error:
            raise ClientError(
                f"The log is not consistent with the checkpoint seen before ({error}): not "
                "cosigning. Keep both checkpoints: they prove the log was rewritten."
            ) from None
    line = notes.cosign(head["checkpoint"], name, key).strip()
    status, answer = connection.call("POST", f"{base}/cosignatures", {"size": size, "line": line})
    if status != 201:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        raise ClientError(message or f"The cosignature was refused ({status}).")
    state[reader_key] = {
        "log_key": known.get("log_key") or head["log_key"],
        "size": size,
        "root": base64.b64encode(root).decode(),
    }
    _write_state(state_file, state)
    return f"Cosigned checkpoint {size} of {head['origin']}."
