"""Checking a petition's log as anyone can: from its entries, its checkpoints and its published key alone.

Entries are canonical JSON (sorted keys, no spaces, UTF-8), one object per leaf:

    {"kind":"petition","petition":42,"version":1,"text_sha256":"...","key_id":"..." or null}   (entry 0)
    {"kind":"signature","visibility":"named","commitment":"<random hex>"}     (never the name: see service.py)
    {"kind":"signature","visibility":"anonymous","message":"<b64url>","signature":"<b64url>"}
    {"kind":"withdrawal","entry":<index of the signature it cancels>}
    {"kind":"version","version":2,"text_sha256":"..."}
    {"kind":"key_destroyed","key_id":"..."}
    {"kind":"forfeit"}      (a member gave up their token to sign with a name: names nobody, counts nothing)
    {"kind":"issuance","tokens_issued":N,"spent_by_name":M}   (running totals, appended with a batch when they
                                                               moved: no finer time than the batch, no account)

`check` recomputes the tree, verifies every checkpoint's signature and that each is a prefix of the log (so
nothing was removed or rewritten), that no two checkpoints of one size disagree (a fork), every anonymous
entry's token under the committed key, that no token is used twice, and the bound: anonymous entries <= tokens
issued - spent by name - forfeited; then it counts the tally: signatures less withdrawals. The issuance totals
are the log's own (the last issuance entry), never decrease, and bound the anonymous entries at every checkpoint
from the first issuance entry on: a token minted later cannot be covered by raising the count afterwards.
With a witness policy, it also requires that many known witnesses to have cosigned the newest checkpoint.
`compare` then holds every figure the page and the API publish to what the log adds up to.

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
    committed: bool = False  # the issuance totals above are the log's own (an issuance entry), not the head's
    # Witnesses (known to the reader) who cosigned the newest checkpoint, with the time each says it saw it.
    cosigned: dict[str, int] = field(default_factory=dict)
    # What each witness gossiped with (`verify --gossip`) said of the checkpoint verified.
    gossiped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int | None]:
        """The figures the log adds up to, as the API publishes them (`counts` of the log's head)."""
        return {
            "signatures": self.signatures,
            "withdrawals": self.withdrawals,
            "tally": self.tally,
            "anonymous": self.anonymous,
            "forfeits": self.forfeits,
            "tokens_issued": self.tokens_issued if self.committed else None,
            "spent_by_name": self.spent_by_name if self.committed else None,
        }

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
        text = (
            f"{verdict}: tally {self.tally} = {self.signatures} signatures - {self.withdrawals} withdrawals "
            f"({self.anonymous} anonymous) in {self.size} entries"
        )
        if self.cosigned:
            text += f"\ncosigned by {', '.join(sorted(self.cosigned))}"
        for line in self.gossiped:
            text += f"\n{line}"
        if self.tokens_issued is not None:
            text += (
                f"\nbound: {self.anonymous} anonymous <= {self.tokens_issued} tokens issued - "
                f"{self.spent_by_name} spent by name - {self.forfeited} forfeited (slack {self.slack})"
                f"\nforfeits: {self.forfeited}, the most a dishonest forfeit could add to the tally"
            )
        return text


def check(
    *,
    entries: Sequence[bytes],
    checkpoints: Sequence[str],
    log_key: tuple[str, Ed25519PublicKey],
    issuing_key_spki: bytes | None,
    tokens_issued: int,
    petition_id: int | None = None,
    seen: dict[int, bytes] | None = None,
    spent_by_name: int = 0,
    forfeited: int = 0,
    witnesses: dict[str, Ed25519PublicKey] | None = None,
    quorum: int = 0,
) -> Report:
    """Verify a downloaded log. `seen` holds roots by size from checkpoints checked before (kept locally);
    `petition_id` is the petition the reader asked for (from the address they typed), so another petition's
    log, signed by the same deployment key, cannot stand in for it.

    What this cannot prove: the deployment holds the issuing key and says how many tokens it issued, so it could
    mint tokens (the count of tokens issued is the public bound), and one reader alone cannot see a log shown
    differently to others (witnesses can: with `quorum`, that many of `witnesses` must have cosigned a
    checkpoint covering every entry served). `spent_by_name` and `forfeited` are the head's published counts;
    `tokens_issued` and `spent_by_name` count only while the log holds no issuance entry (logs begun before)."""
    report = Report(
        size=len(entries),
        tokens_issued=tokens_issued if issuing_key_spki else None,
        spent_by_name=spent_by_name,
        forfeited=forfeited,
    )
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    subtrees = merkle.memory_subtrees(leaves) if leaves else None
    report.root = subtrees(0, len(leaves)) if subtrees else merkle.EMPTY_ROOT
    roots: dict[int, bytes] = dict(seen or {})

    origins: set[str] = set()
    covered = False
    cosigned: dict[int, dict[str, int]] = {}
    for note in checkpoints:
        try:
            signed = notes.verify(note, log_key=log_key, witnesses=witnesses)
        except notes.CheckpointError as error:
            report.problems.append(f"bad checkpoint: {error}")
            continue
        size, root = signed.checkpoint.size, signed.checkpoint.root
        origins.add(signed.checkpoint.origin)
        if petition_id is not None and not signed.checkpoint.origin.endswith(f"/petitions/{petition_id}"):
            report.problems.append(f"a checkpoint is for {signed.checkpoint.origin}, not petition {petition_id}")
        covered = covered or size == len(entries)
        if signed.cosigned_at:
            cosigned.setdefault(size, {}).update(signed.cosigned_at)
        if size in roots and roots[size] != root:
            report.problems.append(f"two checkpoints of size {size} with different roots: the log forked")
        roots.setdefault(size, root)
    if len(origins) > 1:
        report.problems.append(f"checkpoints of different logs: {', '.join(sorted(origins))}")
    if entries and not covered:
        report.problems.append(f"no signed checkpoint covers all {len(entries)} entries")
    for size, root in sorted(roots.items()):
        if size > len(entries):
            report.problems.append(
                f"a checkpoint of size {size} is larger than the {len(entries)} entries served: entries were removed"
            )
        elif size and subtrees is not None and subtrees(0, size) != root:
            report.problems.append(
                f"the first {size} entries do not hash to that checkpoint's root: entries were rewritten or removed"
            )

    _quorum(report, cosigned, len(entries), witnesses or {}, quorum)
    _count(
        entries,
        issuing_key_spki,
        tokens_issued,
        report,
        petition_id,
        sorted(size for size in roots if size <= len(entries)),
    )
    return report


def _quorum(
    report: Report, cosigned: dict[int, dict[str, int]], size: int, witnesses: dict[str, Ed25519PublicKey], quorum: int
) -> None:
    """With a witness policy: `quorum` known witnesses cosigned a checkpoint at least as new as the one shown.
    A log shown to one reader only (a fork) has no witness's cosignature, since a witness refuses a checkpoint
    inconsistent with the one it cosigned before."""
    if size and cosigned:
        newest = max(cosigned)
        if newest >= size:
            report.cosigned = cosigned[newest]
    if not quorum:
        return
    if quorum > len(witnesses):
        report.problems.append(f"the policy asks for {quorum} witnesses but names only {len(witnesses)}")
        return
    enough = [known for known, names in cosigned.items() if len(names) >= quorum]
    if not enough:
        report.problems.append(
            f"no checkpoint is cosigned by {quorum} of the witnesses you trust: this log may be "
            "one shown to you alone (a fork)"
        )
    elif max(enough) < size:
        report.problems.append(
            f"the newest checkpoint cosigned by {quorum} of your witnesses covers {max(enough)} "
            f"entries, not the {size} shown: the newer ones are not witnessed yet (try again "
            "after the witnesses' next round), or are shown to you alone"
        )


def _count(
    entries: Sequence[bytes],
    issuing_key_spki: bytes | None,
    tokens_issued: int,
    report: Report,
    petition_id: int | None,
    checkpoint_sizes: Sequence[int] = (),
) -> None:
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
    committed: tuple[int, int] | None = None  # the last issuance entry's (tokens_issued, spent_by_name)
    boundaries = set(checkpoint_sizes)
    for index, entry in enumerate(parsed):
        if index in boundaries and committed is not None:
            _bound_at(report, index, committed)
        kind = entry.get("kind")
        if kind == "signature":
            report.signatures += 1
            if entry.get("visibility") == "anonymous":
                report.anonymous += 1
                _check_token(index, entry, public, nullifiers, report)
        elif kind == "withdrawal":
            target = entry.get("entry")
            if (
                not isinstance(target, int)
                or not 0 <= target < index
                or parsed[target].get("kind") != "signature"
                or target in withdrawn
            ):
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
        elif kind == "issuance":
            committed = _issuance(index, entry, committed, report)
    if len(parsed) in boundaries and committed is not None:
        _bound_at(report, len(parsed), committed)
    if committed is not None:
        report.tokens_issued, report.spent_by_name = committed if public is not None else (None, committed[1])
        report.committed = True
        tokens_issued = committed[0]
    _bound(report, tokens_issued)
    report.tally = report.signatures - report.withdrawals


def _issuance(
    index: int, entry: dict[str, object], before: tuple[int, int] | None, report: Report
) -> tuple[int, int] | None:
    issued, spent = entry.get("tokens_issued"), entry.get("spent_by_name")
    if (
        set(entry) != {"kind", "tokens_issued", "spent_by_name"}
        or not isinstance(issued, int)
        or not isinstance(spent, int)
        or isinstance(issued, bool)
        or isinstance(spent, bool)
        or not 0 <= spent <= issued
    ):
        report.problems.append(f"entry {index}: an issuance entry is two running totals, spent by name <= issued")
        return before
    if before is not None and (issued < before[0] or spent < before[1]):
        report.problems.append(
            f"entry {index}: the issuance totals went down ({before[0]} issued, {before[1]} "
            f"spent by name before; {issued} and {spent} now): a signed count was rewritten"
        )
    return issued, spent


def _bound_at(report: Report, size: int, committed: tuple[int, int]) -> None:
    """At a checkpoint: the anonymous entries so far against the issuance totals the log had committed by then."""
    issued, spent = committed
    if report.anonymous > issued - spent:
        report.problems.append(
            f"at the checkpoint of size {size}, {report.anonymous} anonymous signatures but the "
            f"log had committed only {issued} tokens issued, {spent} of them spent by name: "
            "tokens were made for no member (raising the count later does not cover them)"
        )


def _bound(report: Report, tokens_issued: int) -> None:
    """Anonymous entries against the published counts. Forfeits are written to the log with the batch after
    they are counted, so the head's count may be ahead of the log's entries, never behind."""
    if report.forfeits > report.forfeited:
        report.problems.append(
            f"the log holds {report.forfeits} forfeits but the published count is only {report.forfeited}"
        )
    forfeited = max(report.forfeited, report.forfeits)
    report.forfeited = forfeited
    unspent = tokens_issued - report.spent_by_name
    if report.anonymous > unspent:
        # No forfeit explains this: a forfeited token was never spent by name, so it is among these.
        report.problems.append(
            f"{report.anonymous} anonymous signatures but only {tokens_issued} tokens issued, "
            f"{report.spent_by_name} of them spent by name: tokens were made for no member"
        )
    elif report.anonymous > unspent - forfeited:
        excess = report.anonymous - (unspent - forfeited)
        report.problems.append(
            f"{report.anonymous} anonymous signatures but only {unspent - forfeited} tokens issued were neither "
            f"spent by name nor forfeited: {excess} signature{'s' if excess != 1 else ''} too many, which "
            f"{forfeited} forfeit{'s' if forfeited != 1 else ''} could explain (a member who gave up their token "
            "and used it anyway) or tokens made for no member"
        )


def _check_token(
    index: int, entry: dict[str, object], public: blindrsa.PublicKey | None, nullifiers: set[str], report: Report
) -> None:
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


def compare(
    report: Report,
    *,
    log_counts: dict[str, object] | None,
    pending: dict[str, object] | None,
    shown: dict[str, dict[str, object]],
) -> None:
    """Hold every figure the deployment publishes to what the log adds up to.

    `log_counts` is what the API says the log counts (its `counts`); `pending` what it says waits for the next
    batch (signatures written since the newest checkpoint, withdrawals, forfeits); `shown` the figures each place
    publishes, by place ("the petition API", "the petition page", "the log API's issuing key"): signature_count,
    anonymous_signatures, forfeited, tokens_issued, spent_by_name, and the page's copy of the log's count.
    A count moves between batches only by what waits for the next one, and what waits is in the next batch."""
    if log_counts is None:
        report.problems.append("the log's head publishes no counts to check")
        log_counts = {}
    for name, value in report.counts().items():
        if name in ("tokens_issued", "spent_by_name") and not report.committed:
            continue
        if log_counts.get(name) != value:
            report.problems.append(
                f"the API says the log counts {log_counts.get(name)} {name.replace('_', ' ')}, "
                f"but its entries add up to {value}"
            )
    waiting: dict[str, int] = {}
    for key in ("signatures", "withdrawals", "anonymous", "forfeits"):
        count = _count_of(pending or {}, key)
        if count is None or count < 0:
            report.problems.append(f"the API's figure of {key} waiting for the next batch is missing or negative")
            return
        waiting[key] = count
    expected: dict[str, tuple[int, str]] = {
        "signature_count": (
            report.tally + waiting["signatures"] - waiting["withdrawals"],
            (
                f"the log's tally {report.tally} + {waiting['signatures']} signatures waiting - "
                f"{waiting['withdrawals']} withdrawals waiting"
            ),
        ),
        "log_tally": (report.tally, "the log's tally"),
        "anonymous_signatures": (
            report.anonymous + waiting["anonymous"],
            f"{report.anonymous} anonymous in the log + {waiting['anonymous']} waiting",
        ),
        "forfeited": (
            report.forfeits + waiting["forfeits"],
            f"{report.forfeits} forfeits in the log + {waiting['forfeits']} waiting",
        ),
    }
    for place, figures in shown.items():
        for name, figure in figures.items():
            if figure is None:
                continue
            if name in expected:
                want, how = expected[name]
                if figure != want:
                    report.problems.append(f"{place} shows {figure} for {name.replace('_', ' ')}, but {how} is {want}")
            elif name in ("tokens_issued", "spent_by_name") and report.committed:
                # What is published is what the log commits (issue #20): the deployment shows the last issuance
                # entry's totals, not its live counters, which its operator could raise to claim a larger
                # anonymity set. Issuance since then is committed, and shown, with the next batch.
                committed = report.tokens_issued if name == "tokens_issued" else report.spent_by_name
                if not isinstance(figure, int) or isinstance(figure, bool) or committed is None or figure != committed:
                    what = "tokens were issued" if name == "tokens_issued" else "tokens were spent by name"
                    report.problems.append(f"{place} says {figure} {what}; the log commits {committed}")


def _count_of(figures: dict[str, object], key: str) -> int | None:
    value = figures.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
