"""The command-line wallet's check of every blind-signing key it is handed, before blinding and before sending.

A server that wants to recognise one person's token can hand that person a key of their own and nobody else's:
the token it signs then says whose it is, however it travels. So the key the signed-in wallet is given must be
the key everyone is shown:

- the list of keys published without cookies (GET /api/v1/anonymous/keys, read here over the bare connection,
  which carries no cookie, so the server cannot tell whose copy it is serving);
- also the key id committed in entry 0 of the petition's signature log (`key_id` for the signing key,
  `discussion_key_id` for the discussion key), read under a checkpoint signed by the log's key (pinned with --log-key, or the one `undersigned verify` saw before on this
  machine, or the one the log names the first time) and cosigned by every witness the person names, and
  consistent with every checkpoint this machine saw before;
- and the key accepted the first time, remembered per petition and purpose in the wallet file: a key that changes
  after first use is refused, whatever the list and the log say then (a server could otherwise show one account
  a key of its own from some later day on, once the first check had passed).

Logs opened before entry 0 named the discussion key lack `discussion_key_id`: for those the discussion key is held
to the published list and to the key accepted the first time. A field that is there and null commits to no
discussion key, so any discussion key offered is refused.

What one petition's log shows binds the whole deployment (its witnesses are one setting, and so is the form of its
entry 0), so the wallet file also remembers per deployment (issue #20):
- that some entry 0 of this deployment named the discussion key: from then on a discussion key whose entry 0 lacks
  the field is refused (unless this wallet accepted that petition's key before, when it is held to that key), so an
  operator cannot open a new petition "as if before the field existed" to hand one account a key of its own;
- every witness a log head of this deployment named: a later head, of any petition, naming fewer is refused, and
  every one of them (with those given with --witness) must have cosigned the checkpoint entry 0 is read under.

Every answer of the server is read as untrusted: one of the wrong shape is refused in words (a ClientError), and
reading the checkpoints stops when a page does not advance.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.clients import log as log_client  # the state `undersigned verify` keeps, shared with it
from app.clients.anonymous import ClientError, Connection
from app.core import blindrsa, merkle
from app.core.b64url import decode as _b64d
from app.log import checkpoint as notes
from app.log.verifier import encode

WHAT = {"sign": "signing key", "discuss": "discussion key", "signer": "signers' key", "ballot": "poll key"}
# What reading an answer of the wrong shape raises (a key missing, a value of another type, a note that does not
# parse): refused in words.
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, notes.CheckpointError)
# The wallet file's "keys" slots that hold what this deployment's logs showed, after "<base_url>|deployment|".
DISCUSSION_COMMITTED = "discussion_key_id"
WITNESSES = "witnesses"


class KeyCheck:
    """Compares keys for one deployment; reads everything without cookies and remembers it for one run."""

    def __init__(
        self,
        connection: Connection,
        *,
        state_file: Path,
        log_key: str | None = None,
        witnesses: list[str] | None = None,
        remembered: dict[str, str] | None = None,
    ) -> None:
        self.connection = connection
        # The wallet file's "keys": "base_url|petition|purpose" -> the key id accepted the first time.
        self.remembered = remembered if remembered is not None else {}
        self.state_file = state_file
        self.pinned = log_key.strip() if log_key else None
        try:
            self.witnesses = dict(notes.parse_verifier_key(text) for text in (witnesses or []))
            if self.pinned:
                notes.parse_verifier_key(self.pinned)
        except notes.CheckpointError as error:
            raise ClientError(f"A key given with --log-key or --witness is malformed: {error}.") from None
        self._published: list[dict[str, Any]] | None = None
        self._committed: dict[int, dict[str, str | None]] = {}

    def _deployment(self, what: str) -> str:
        return f"{self.connection.base_url}|deployment|{what}"

    def require(self, *, petition_id: int, purpose: str, key_id: str, spki: str) -> None:
        """Raise unless this key is the one published to everyone and the one entry 0 commits. For purpose
        "ballot", `petition_id` is the poll's id, and entry 0 is the poll log's."""
        if purpose == "ballot":
            self._require_ballot(ballot_id=petition_id, key_id=key_id, spki=spki)
            return
        what = WHAT[purpose]
        try:
            derived = _key_id(spki)
        except (ValueError, TypeError, blindrsa.BlindSignatureError):
            raise ClientError(f"Petition {petition_id}'s {what} is not a valid key: nothing was sent.") from None
        if derived != key_id:
            raise ClientError(f"Petition {petition_id}'s {what} does not match its own id: nothing was sent.")
        slot = f"{self.connection.base_url}|{petition_id}|{purpose}"
        accepted = self.remembered.get(slot)
        if accepted is not None and accepted != key_id:
            raise ClientError(
                f"Refusing petition {petition_id}: its {what} changed since this wallet first accepted it (was "
                f"{accepted[:16]}…, now {key_id[:16]}…). A petition keeps one key; a new one, shown to you, could "
                "let the server recognise your token. Nothing was sent; tell the organizers and keep this wallet "
                "file as evidence."
            )
        try:
            listed = [
                key
                for key in self._keys()
                if key.get("petition_id") == petition_id and key.get("purpose", "sign") == purpose
            ]
        except MALFORMED:
            raise ClientError(
                "The keys published to everyone (/api/v1/anonymous/keys) are malformed: nothing was sent."
            ) from None
        if not listed:
            raise ClientError(
                f"Petition {petition_id} publishes no {what} to everyone (it may have closed, or the server shows "
                f"you a key it shows nobody else): nothing was sent."
            )
        if any(key.get("key_id") != key_id or key.get("spki") != spki for key in listed):
            raise ClientError(
                f"Refusing petition {petition_id}: the {what} your account was given differs from the one published "
                "to everyone. A key of your own would let the server recognise your token. Nothing was sent; tell "
                "the organizers and keep this wallet file as evidence."
            )
        try:
            committed = self._entry_zero_keys(petition_id)
        except MALFORMED as error:
            raise ClientError(
                f"Petition {petition_id}'s signature log answered something malformed "
                f"({type(error).__name__}), so the keys it commits to cannot be checked: nothing was "
                "sent."
            ) from None
        if (
            purpose == "discuss"
            and purpose not in committed
            and accepted is None
            and self.remembered.get(self._deployment(DISCUSSION_COMMITTED))
        ):
            raise ClientError(
                f"Refusing petition {petition_id}: entry 0 of its signature log does not name its discussion key, "
                "though this deployment's logs named theirs before, so this one could be a key shown to you alone. "
                "Nothing was sent; tell the organizers and keep this wallet file as evidence."
            )
        if purpose in committed and committed[purpose] != key_id:
            raise ClientError(
                f"Refusing petition {petition_id}: its {what} is not the key its signature log committed to when it "
                "opened (entry 0), so it could be a key shown to you alone. Nothing was sent; tell the organizers "
                "and keep this wallet file as evidence."
            )
        self.remembered[slot] = key_id

    def _require_ballot(self, *, ballot_id: int, key_id: str, spki: str) -> None:
        """A poll's key: its own id, the one published to everyone, the one entry 0 of the poll's log commits, and
        the one this wallet accepted first for the poll."""
        what = f"Poll {ballot_id}'s key"
        try:
            derived = _key_id(spki)
        except (ValueError, TypeError, blindrsa.BlindSignatureError):
            raise ClientError(f"{what} is not a valid key: nothing was sent.") from None
        if derived != key_id:
            raise ClientError(f"{what} does not match its own id: nothing was sent.")
        slot = f"{self.connection.base_url}|ballot:{ballot_id}|ballot"
        accepted = self.remembered.get(slot)
        if accepted is not None and accepted != key_id:
            raise ClientError(
                f"Refusing poll {ballot_id}: its key changed since this wallet first accepted it. A poll keeps one "
                "key; a new one, shown to you, could let the server recognise your answer. Nothing was sent."
            )
        try:
            listed = [
                key for key in self._keys() if key.get("purpose") == "ballot" and key.get("ballot_id") == ballot_id
            ]
            page = self._get(f"/api/v1/ballots/{ballot_id}/log/leaves?start=0&end=1")
            entry = json.loads(_b64d(page["leaves"][0]["entry"]))
        except MALFORMED:
            raise ClientError(f"Poll {ballot_id}'s published key or log is malformed: nothing was sent.") from None
        if not listed or any(key.get("key_id") != key_id or key.get("spki") != spki for key in listed):
            raise ClientError(
                f"Refusing poll {ballot_id}: the key you were given is not the one published to everyone (or the poll "
                "is not open). A key of your own would let the server recognise your answer. Nothing was sent."
            )
        if not isinstance(entry, dict) or entry.get("ballot") != ballot_id or entry.get("key_id") != key_id:
            raise ClientError(
                f"Refusing poll {ballot_id}: its key is not the one entry 0 of its log commits to. Nothing was sent."
            )
        self.remembered[slot] = key_id

    def _keys(self) -> list[dict[str, Any]]:
        if self._published is None:
            status, answer = self.connection.anonymous("GET", "/api/v1/anonymous/keys")
            if status != 200 or not isinstance(answer, list):
                raise ClientError(
                    "Could not read the keys published to everyone (/api/v1/anonymous/keys): nothing was sent."
                )
            self._published = answer
        return self._published

    def _get(self, path: str) -> Any:
        status, answer = self.connection.anonymous("GET", path)
        if status != 200:
            raise ClientError(
                f"Could not read the petition's signature log ({path} answered {status}): the "
                "keys it commits to cannot be checked, so nothing was sent."
            )
        return answer

    def _entry_zero_keys(self, petition_id: int) -> dict[str, str | None]:
        """The key ids entry 0 commits, by purpose (no "discuss" for a log opened before it named one)."""
        if petition_id in self._committed:
            return self._committed[petition_id]
        base = f"/api/v1/petitions/{petition_id}/log"
        reader = f"{self.connection.base_url}/petitions/{petition_id}"
        state = log_client._state(self.state_file)
        known = state.get(reader, {})
        head = self._get(base)
        witnesses = self._witnesses(head, petition_id)
        if not self.pinned and known.get("log_key") and known["log_key"] != head.get("log_key"):
            raise ClientError(
                f"Petition {petition_id}'s log is signed with a key other than the one seen before on "
                "this machine: nothing was sent."
            )
        log_key_text = self.pinned or known.get("log_key") or head["log_key"]
        log_key = notes.parse_verifier_key(log_key_text)
        signed = self._cosigned_checkpoint(base, head["checkpoint"], log_key, petition_id, witnesses)
        size, root = signed.checkpoint.size, signed.checkpoint.root
        if not signed.checkpoint.origin.endswith(f"/petitions/{petition_id}"):
            raise ClientError(
                f"The checkpoint is for {signed.checkpoint.origin}, not petition {petition_id}: nothing was sent."
            )
        page = self._get(f"{base}/entries?start=0&limit=1")
        proof = self._get(f"{base}/inclusion?index=0&size={size}")["proof"]
        try:
            # Binary fields: base64url without padding, or the standard base64 of servers before (either reads).
            entry = _b64d(page["entries"][0]["entry"])
            merkle.verify_inclusion(0, size, merkle.leaf_hash(entry), [_b64d(node) for node in proof], root)
            parsed = json.loads(entry)
        except (KeyError, IndexError, TypeError, ValueError, merkle.ProofError):
            raise ClientError(
                f"Entry 0 of petition {petition_id}'s log is not in its signed checkpoint: nothing was sent."
            ) from None
        if (
            not isinstance(parsed, dict)
            or encode(parsed) != entry
            or parsed.get("kind") != "petition"
            or parsed.get("petition") != petition_id
        ):
            raise ClientError(
                f"Entry 0 of petition {petition_id}'s log does not commit to this petition: nothing was sent."
            )
        roots = self._consistent(base, known, size, root, petition_id)
        state[reader] = {"log_key": known.get("log_key") or log_key_text, "roots": roots}
        log_client._write_state(self.state_file, state)
        committed = {"sign": parsed.get("key_id")}
        if parsed.get("signer_key_id"):  # logs opened before signer keys (issue #25) name none
            committed["signer"] = parsed["signer_key_id"]
        if "discussion_key_id" in parsed:
            committed["discuss"] = parsed["discussion_key_id"]
            self.remembered[self._deployment(DISCUSSION_COMMITTED)] = "named in entry 0"
        if witnesses:
            self.remembered[self._deployment(WITNESSES)] = json.dumps(sorted(witnesses))
        self._committed[petition_id] = committed
        return committed

    def _witnesses(self, head: dict[str, Any], petition_id: int) -> dict[str, Ed25519PublicKey]:
        """The witnesses whose cosignature entry 0 is read under: those given with --witness, and every one a log
        head of this deployment named (this one or any before; the set only grows). A head naming fewer than seen
        before is refused. Returns them by verifier key."""
        named = head.get("witness_keys") or []
        if not isinstance(named, list) or not all(isinstance(vkey, str) for vkey in named):
            raise ClientError(
                f"Petition {petition_id}'s signature log names its witnesses in a malformed list: nothing was sent."
            )
        pinned = json.loads(self.remembered.get(self._deployment(WITNESSES)) or "[]")
        dropped = [vkey for vkey in pinned if vkey not in named]
        if dropped:
            raise ClientError(
                f"Refusing petition {petition_id}: its signature log no longer names the witness "
                f"{', '.join(vkey.split('+')[0] for vkey in dropped)}, which this wallet saw watching this "
                "deployment's logs before. Without it nothing shows the log you are shown is the one everyone is "
                "shown: nothing was sent. Tell the organizers and keep this wallet file as evidence."
            )
        try:
            return {vkey: notes.parse_verifier_key(vkey)[1] for vkey in named}
        except notes.CheckpointError:
            raise ClientError(
                f"Petition {petition_id}'s signature log names a witness key that is malformed: nothing was sent."
            ) from None

    def _cosigned_checkpoint(
        self, base: str, latest: str, log_key: Any, petition_id: int, named: dict[str, Ed25519PublicKey]
    ) -> notes.SignedCheckpoint:
        """The latest checkpoint signed by the log and cosigned by every witness given or named (they may lag
        behind)."""
        # By the name each signs under: one given with --witness stands for a named one of the same name.
        required = {**{notes.parse_verifier_key(vkey)[0]: key for vkey, key in named.items()}, **self.witnesses}
        candidates = [latest]
        if required:
            after, older = 0, []
            while True:
                page = self._get(f"{base}/checkpoints?after={after}&limit=1000")["checkpoints"]
                if not page:
                    break
                older += page
                size = notes.parse(page[-1])[0].size
                if size <= after:
                    break  # a page that does not advance: a server repeating itself would be read forever
                after = size
            candidates += reversed(older)
        for note in candidates:
            try:
                signed = notes.verify(note, log_key=log_key, witnesses=required)
            except notes.CheckpointError as error:
                raise ClientError(
                    f"Petition {petition_id}'s log checkpoint does not verify ({error}): nothing was sent."
                ) from None
            missing = set(required) - signed.signers
            if not missing and signed.checkpoint.size >= 1:
                return signed
        raise ClientError(
            f"No checkpoint of petition {petition_id}'s log is cosigned by "
            f"{', '.join(sorted(required))} yet: nothing was sent. Try again later."
        )

    def _consistent(self, base: str, known: dict[str, Any], size: int, root: bytes, petition_id: int) -> dict[str, str]:
        """Hold the checkpoint to the largest one seen before on this machine; return the roots to remember."""
        roots = dict(known.get("roots", {}))
        if roots:
            old_size = max(int(value) for value in roots)
            old_root = base64.b64decode(roots[str(old_size)])
            low, high = sorted((old_size, size))
            low_root, high_root = (old_root, root) if old_size <= size else (root, old_root)
            try:
                proof = (
                    []
                    if low == high
                    else [_b64d(node) for node in self._get(f"{base}/consistency?old={low}&new={high}")["proof"]]
                )
                merkle.verify_consistency(low, high, low_root, high_root, proof)
            except (ClientError, ValueError, merkle.ProofError):
                raise ClientError(
                    f"Petition {petition_id}'s log is not consistent with the checkpoint this machine "
                    "saw before: it was rewritten. Nothing was sent; keep "
                    f"{self.state_file} as evidence."
                ) from None
        roots[str(size)] = base64.b64encode(root).decode()
        return roots


def _key_id(spki: str) -> str:
    return blindrsa.PublicKey.from_spki(_b64d(spki)).key_id()
