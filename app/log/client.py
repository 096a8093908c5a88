"""`undersigned verify` and `undersigned witness`: checking a petition's log from outside, with nothing but its
public API (or files saved from it), and remembering what was seen so a later rewrite cannot go unnoticed."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.anonymous.client import ClientError, Connection, parse_petition_url
from app.core import merkle
from app.log import checkpoint as notes
from app.log.verifier import Report, check


def _get(connection: Connection, path: str) -> Any:
    status, answer = connection.anonymous("GET", path)
    if status != 200:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        raise ClientError(message or f"{path} answered {status}")
    return answer


def _reader_key(petition_url: str) -> str:
    """What this machine's state is filed under: the address the person typed, not one the server names."""
    target = parse_petition_url(petition_url)
    return f"{target.base_url}/petitions/{target.petition_id}"


def download(petition_url: str) -> dict[str, Any]:
    """The log's head, every entry and every checkpoint, read without cookies."""
    target = parse_petition_url(petition_url)
    connection = Connection(target.base_url)
    base = f"/api/v1/petitions/{target.petition_id}/log"
    head = _get(connection, base)
    entries: list[str] = []
    while len(entries) < head["size"]:
        page = _get(connection, f"{base}/entries?start={len(entries)}&limit=1000")
        if not page["entries"]:
            break
        entries += [item["entry"] for item in page["entries"]]
    checkpoints: list[str] = []
    after = 0
    while True:
        page = _get(connection, f"{base}/checkpoints?after={after}&limit=1000")["checkpoints"]
        if not page:
            break
        checkpoints += page
        after = notes.parse(page[-1])[0].size
    return {"url": _reader_key(petition_url), "petition_id": target.petition_id, "head": head,
            "entries": entries[:head["size"]], "checkpoints": checkpoints}


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


def verify(log: dict[str, Any], state_file: Path) -> Report:
    """Check a downloaded log against what this machine saw before (log key, earlier checkpoints)."""
    head = log["head"]
    state = _state(state_file)
    known = state.get(log["url"], {})
    report_problems: list[str] = []
    if known.get("log_key") and known["log_key"] != head["log_key"]:
        report_problems.append("the log's key is not the one seen before")
    name, public = notes.parse_verifier_key(known.get("log_key") or head["log_key"])
    seen = {int(size): base64.b64decode(root) for size, root in known.get("roots", {}).items()}
    issuing = head.get("issuing_key") or {}
    report = check(entries=[base64.b64decode(entry) for entry in log["entries"]], checkpoints=log["checkpoints"],
                   log_key=(name, public),
                   issuing_key_spki=base64.b64decode(issuing["spki"]) if issuing.get("spki") else None,
                   tokens_issued=int(issuing.get("tokens_issued", 0)), petition_id=int(log["petition_id"]),
                   seen=seen, spent_by_name=int(issuing.get("spent_by_name", 0)),
                   forfeited=int(issuing.get("forfeited", 0)))
    report.problems[:0] = report_problems
    if report.ok:
        roots = {str(size): base64.b64encode(root).decode() for size, root in seen.items()}
        for note in log["checkpoints"]:
            checkpoint = notes.parse(note)[0]
            roots[str(checkpoint.size)] = base64.b64encode(checkpoint.root).decode()
        state[log["url"]] = {"log_key": known.get("log_key") or head["log_key"], "roots": roots}
        _write_state(state_file, state)
    return report


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
    if known.get("log_key") and known["log_key"] != head["log_key"]:
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
            merkle.verify_consistency(old_size, size, old_root, root, [base64.b64decode(node) for node in proof])
        except merkle.ProofError as error:
            raise ClientError(f"The log is not consistent with the checkpoint seen before ({error}): not "
                              "cosigning. Keep both checkpoints: they prove the log was rewritten.") from None
    line = notes.cosign(head["checkpoint"], name, key).strip()
    status, answer = connection.call("POST", f"{base}/cosignatures", {"size": size, "line": line})
    if status != 201:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        raise ClientError(message or f"The cosignature was refused ({status}).")
    state[reader_key] = {"log_key": known.get("log_key") or head["log_key"], "size": size,
                             "root": base64.b64encode(root).decode()}
    _write_state(state_file, state)
    return f"Cosigned checkpoint {size} of {head['origin']}."
