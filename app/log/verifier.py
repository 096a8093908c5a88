"""Checking a petition's log as anyone can: from its entries, its checkpoints and its published key alone.

Entries are canonical JSON (sorted keys, no spaces, UTF-8), one object per leaf:

    {"kind":"petition","petition":42,"version":1,"text_sha256":"...","key_id":"..." or null}   (entry 0)
    {"kind":"signature","visibility":"named","commitment":"<random hex>"}     (never the name: see service.py)
    {"kind":"signature","visibility":"anonymous","message":"<b64url>","signature":"<b64url>"}
    {"kind":"withdrawal","entry":<index of the signature it cancels>}
    {"kind":"version","version":2,"text_sha256":"..."}
    {"kind":"key_destroyed","key_id":"..."}
    {"kind":"forfeit"}      (a member gave up their token to sign with a name: names nobody, counts nothing)

`check` recomputes the tree, verifies every checkpoint's signature and that each is a prefix of the log (so
nothing was removed or rewritten), that no two checkpoints of one size disagree (a fork), every anonymous
entry's token under the committed key, that no token is used twice, and the bound: anonymous entries <= tokens
issued - spent by name - forfeited; then it counts the tally: signatures less withdrawals.

A forfeit is taken on the member's word (the server never saw the token), so a member could forfeit and still
use the token anonymously from the device that holds it. The bound then breaks by at most the number of
forfeits, which is why the report always prints it: it is the most dishonest forfeits could add to the tally.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core import b64url, blindrsa, merkle
from app.log import checkpoint as notes


def encode(entry: dict[str, object]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    tally: int = 0
    signatures: int = 0
    withdrawals: int = 0
    anonymous: int = 0
    forfeits: int = 0  # forfeit entries in the log
    size: int = 0
    root: bytes = b""
    # The published counts the bound is checked against (the log head's issuing key); None without a key.
    tokens_issued: int | None = None
    spent_by_name: int = 0
    forfeited: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def slack(self) -> int | None:
        """How many more anonymous signatures the honest bound allows: unused tokens, as anyone can count."""
        if self.tokens_issued is None:
            return None
        return self.tokens_issued - self.spent_by_name - self.forfeited - self.anonymous

    def summary(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        text = (f"{verdict}: tally {self.tally} = {self.signatures} signatures - {self.withdrawals} withdrawals "
                f"({self.anonymous} anonymous) in {self.size} entries")
        if self.tokens_issued is not None:
            text += (f"\nbound: {self.anonymous} anonymous <= {self.tokens_issued} tokens issued - "
                     f"{self.spent_by_name} spent by name - {self.forfeited} forfeited (slack {self.slack})"
                     f"\nforfeits: {self.forfeited}, the most a dishonest forfeit could add to the tally")
        return text


def check(*, entries: Sequence[bytes], checkpoints: Sequence[str], log_key: tuple[str, Ed25519PublicKey],
          issuing_key_spki: bytes | None, tokens_issued: int, petition_id: int | None = None,
          seen: dict[int, bytes] | None = None, spent_by_name: int = 0, forfeited: int = 0) -> Report:
    """Verify a downloaded log. `seen` holds roots by size from checkpoints checked before (kept locally);
    `petition_id` is the petition the reader asked for (from the address they typed), so another petition's
    log, signed by the same deployment key, cannot stand in for it.

    What this cannot prove: the deployment holds the issuing key and says how many tokens it issued, so it could
    mint tokens (the count of tokens issued is the public bound), and one reader alone cannot see a log shown
    differently to others (witnesses can). `spent_by_name` and `forfeited` are the head's published counts."""
    report = Report(size=len(entries), tokens_issued=tokens_issued if issuing_key_spki else None,
                    spent_by_name=spent_by_name, forfeited=forfeited)
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    subtrees = merkle.memory_subtrees(leaves) if leaves else None
    report.root = subtrees(0, len(leaves)) if subtrees else merkle.EMPTY_ROOT
    roots: dict[int, bytes] = dict(seen or {})

    origins: set[str] = set()
    covered = False
    for note in checkpoints:
        try:
            signed = notes.verify(note, log_key=log_key)
        except notes.CheckpointError as error:
            report.problems.append(f"bad checkpoint: {error}")
            continue
        size, root = signed.checkpoint.size, signed.checkpoint.root
        origins.add(signed.checkpoint.origin)
        if petition_id is not None and not signed.checkpoint.origin.endswith(f"/petitions/{petition_id}"):
            report.problems.append(f"a checkpoint is for {signed.checkpoint.origin}, not petition {petition_id}")
        covered = covered or size == len(entries)
        if size in roots and roots[size] != root:
            report.problems.append(f"two checkpoints of size {size} with different roots: the log forked")
        roots.setdefault(size, root)
    if len(origins) > 1:
        report.problems.append(f"checkpoints of different logs: {', '.join(sorted(origins))}")
    if entries and not covered:
        report.problems.append(f"no signed checkpoint covers all {len(entries)} entries")
    for size, root in sorted(roots.items()):
        if size > len(entries):
            report.problems.append(f"a checkpoint of size {size} is larger than the {len(entries)} entries served: "
                                   "entries were removed")
        elif size and subtrees is not None and subtrees(0, size) != root:
            report.problems.append(f"the first {size} entries do not hash to that checkpoint's root: entries were "
                                   "rewritten or removed")

    _count(entries, issuing_key_spki, tokens_issued, report, petition_id)
    return report


def _count(entries: Sequence[bytes], issuing_key_spki: bytes | None, tokens_issued: int, report: Report,
           petition_id: int | None) -> None:
    public = blindrsa.PublicKey.from_spki(issuing_key_spki) if issuing_key_spki else None
    parsed: list[dict[str, object]] = []
    for index, raw in enumerate(entries):
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict) or raw != encode(entry):
                raise ValueError
        except ValueError:
            report.problems.append(f"entry {index} is not canonical JSON")
            entry = {}
        parsed.append(entry)
    if parsed and parsed[0].get("kind") != "petition":
        report.problems.append("entry 0 does not commit to the petition")
    elif parsed and petition_id is not None and parsed[0].get("petition") != petition_id:
        report.problems.append(f"this is the log of petition {parsed[0].get('petition')}, not of {petition_id}")
    committed_key = parsed[0].get("key_id") if parsed else None
    if public is not None and committed_key != public.key_id():
        report.problems.append("the issuing key is not the one entry 0 commits to")
    nullifiers: set[str] = set()
    withdrawn: set[int] = set()
    for index, entry in enumerate(parsed):
        kind = entry.get("kind")
        if kind == "signature":
            report.signatures += 1
            if entry.get("visibility") == "anonymous":
                report.anonymous += 1
                _check_token(index, entry, public, nullifiers, report)
        elif kind == "withdrawal":
            target = entry.get("entry")
            if (not isinstance(target, int) or not 0 <= target < index
                    or parsed[target].get("kind") != "signature" or target in withdrawn):
                report.problems.append(f"entry {index} withdraws something that is not a signature in the log")
                continue
            if parsed[target].get("visibility") == "anonymous":
                report.problems.append(f"entry {index} withdraws an anonymous signature, which nobody can do")
                continue
            withdrawn.add(target)
            report.withdrawals += 1
        elif kind == "forfeit":
            if set(entry) != {"kind"}:
                report.problems.append(f"entry {index}: a forfeit carries more than its kind")
            report.forfeits += 1
    _bound(report, tokens_issued)
    report.tally = report.signatures - report.withdrawals


def _bound(report: Report, tokens_issued: int) -> None:
    """Anonymous entries against the published counts. Forfeits are written to the log with the batch after
    they are counted, so the head's count may be ahead of the log's entries, never behind."""
    if report.forfeits > report.forfeited:
        report.problems.append(f"the log holds {report.forfeits} forfeits but the published count is only "
                               f"{report.forfeited}")
    forfeited = max(report.forfeited, report.forfeits)
    report.forfeited = forfeited
    unspent = tokens_issued - report.spent_by_name
    if report.anonymous > unspent:
        # No forfeit explains this: a forfeited token was never spent by name, so it is among these.
        report.problems.append(f"{report.anonymous} anonymous signatures but only {tokens_issued} tokens issued, "
                               f"{report.spent_by_name} of them spent by name: tokens were made for no member")
    elif report.anonymous > unspent - forfeited:
        excess = report.anonymous - (unspent - forfeited)
        report.problems.append(
            f"{report.anonymous} anonymous signatures but only {unspent - forfeited} tokens issued were neither "
            f"spent by name nor forfeited: {excess} signature{'s' if excess != 1 else ''} too many, which "
            f"{forfeited} forfeit{'s' if forfeited != 1 else ''} could explain (a member who gave up their token "
            "and used it anyway) or tokens made for no member")


def _check_token(index: int, entry: dict[str, object], public: blindrsa.PublicKey | None, nullifiers: set[str],
                 report: Report) -> None:
    try:
        message, signature = b64url.decode(str(entry["message"])), b64url.decode(str(entry["signature"]))
    except (KeyError, ValueError):
        report.problems.append(f"entry {index}: an anonymous signature without its token")
        return
    nullifier = hashlib.sha256(message).hexdigest()
    if nullifier in nullifiers:
        report.problems.append(f"entry {index}: a token used twice")
    nullifiers.add(nullifier)
    if public is None:
        report.problems.append(f"entry {index}: an anonymous signature, but no issuing key to check it against")
        return
    try:
        blindrsa.verify(public, message, signature)
    except blindrsa.BlindSignatureError:
        report.problems.append(f"entry {index}: a token the petition's key did not sign")
