"""`undersigned verify` for a ballot (issue #25): check a ballot's log from outside, with nothing but its public
API, and recompute its result.

What is checked: the checkpoint's signature under the log key (the one seen before for this ballot, when there is
one), the Merkle root recomputed from every leaf (RFC 9162), that no size or root seen before was rewritten,
entry 0 (the ballot, its key matching the key the API publishes), each answer's credential (an RSA blind
signature, RFC 9474, under the ballot's key), each answer's choice against the ballot's options, the revisions of
each credential (1, then 2...: a revision that does not follow the one before fails), the counters the checkpoint
commits (answers counted = distinct credentials, and no more than credentials issued), and the result: recounted
from the last revision of each credential and compared with the one `/results` publishes. A breakdown by group
(a poll put to several departments or locations) cannot be recounted, since no leaf names a group; what is
checked is that it is published only once the poll has closed, for a poll whose entry 0 says it has one, with its
groups as rows; agrees with the recount (each option's published cells add up to at most its count, exactly when
none is suppressed); and keeps the suppression's promises that an outsider can check, with k the minimum entry 0
commits (no figure under k but 0, never one suppressed cell alone in a column, suppressed cells adding up to k or
more and to more than one each, no row whose only figures are zeros beside a suppressed one).

What it cannot see: a choice rewritten inside a leaf whose checkpoint the operator signs again, unless this
machine saw the earlier root (the credential signs its message, not the choice); each answerer can check their
own answer in the leaves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.ballots import counting
from app.ballots import log as ballot_log
from app.clients.anonymous import ClientError, Connection
from app.core import b64url, blindrsa, merkle
from app.log import checkpoint as notes
from app.models.ballots import BallotKind

# GET a path of the deployment's API without cookies: (status, JSON body).
Fetch = Callable[[str], tuple[int, Any]]
PAGE = 1000


@dataclass(frozen=True)
class BallotTarget:
    base_url: str
    ballot_id: int


def parse_ballot_url(url: str) -> BallotTarget | None:
    """A ballot's address (its page /polls/42, or its API /api/v1/ballots/42); None for anything else."""
    found = re.match(r"^(https?://[^/]+)(?:/.*)?/(?:polls|api/v1/ballots)/(\d+)(?:[/?#].*)?$", url.strip())
    return BallotTarget(found.group(1), int(found.group(2))) if found else None


def fetcher(base_url: str) -> Fetch:
    connection = Connection(base_url)
    return lambda path: connection.anonymous("GET", path)


def _get(fetch: Fetch, path: str) -> Any:
    status, answer = fetch(path)
    if status != 200:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        raise ClientError(message or f"{path} answered {status}")
    return answer


def download(url: str, fetch: Fetch | None = None) -> dict[str, Any]:
    """The ballot as the API shows it, its latest checkpoint, every leaf it covers and the published result."""
    target = parse_ballot_url(url)
    if target is None:
        raise ClientError("Give the poll's address, like https://undersigned.example.org/polls/42")
    fetch = fetch or fetcher(target.base_url)
    base = f"/api/v1/ballots/{target.ballot_id}"
    ballot = _get(fetch, base)
    head = _get(fetch, f"{base}/log/checkpoint")
    leaves: list[dict[str, Any]] = []
    while len(leaves) < int(head["size"]):
        page = _get(fetch, f"{base}/log/leaves?start={len(leaves)}&end={len(leaves) + PAGE}")["leaves"]
        if not page:
            break
        leaves += page
    return {
        "url": f"{target.base_url}/polls/{target.ballot_id}",
        "ballot_id": target.ballot_id,
        "ballot": ballot,
        "head": head,
        "leaves": leaves,
        "results": _get(fetch, f"{base}/results"),
    }


SAVED = "ballot.json"


def save(data: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SAVED).write_text(json.dumps(data, indent=1))


def saved_in(directory: Path) -> bool:
    return (directory / SAVED).exists()


def load(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / SAVED).read_text())
    except (OSError, ValueError):
        raise ClientError(f"No saved poll in {directory} (save one with --save).") from None


@dataclass
class BallotReport:
    problems: list[str] = field(default_factory=list)
    size: int = 0
    answers: int = 0  # leaves that are answers (every revision)
    counted: int = 0  # distinct credentials
    result: counting.Results | counting.NotEnough | None = None
    # The answers are not published yet (the result is kept, or below the minimum): what was checked is the
    # checkpoint and the ballot's own entries.
    withheld: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"FAILED ({len(self.problems)} problems)"
        if self.withheld:
            return (
                f"{verdict} so far: the checkpoint is signed and the ballot's entries commit its key; its "
                f"{self.counted} counted answers are published with the result, check again then"
            )
        return (
            f"{verdict}: {self.size} entries, {self.answers} answers from {self.counted} credentials "
            f"(the last answer of each counts)"
        )


def _state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        raise ClientError(f"Could not read {path}: it is not the file `undersigned verify` keeps.") from None


def verify(data: dict[str, Any], state_file: Path) -> BallotReport:
    """Check a downloaded ballot log (see the module's docstring); remembers the log key and roots when it passes."""
    try:
        return _verify(data, state_file)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, notes.CheckpointError) as error:
        raise ClientError(f"The server's answer is malformed: {error}") from None


def _verify(data: dict[str, Any], state_file: Path) -> BallotReport:
    report = BallotReport()
    problems = report.problems
    state = _state(state_file)
    known = state.get(data["url"], {})
    head = data["head"]
    if known.get("log_key") and known["log_key"] != head["log_key"]:
        problems.append("the log's key is not the one seen before")
    name, public = notes.parse_verifier_key(known.get("log_key") or head["log_key"])
    try:
        signed = notes.verify(head["checkpoint"], log_key=(name, public))
    except notes.CheckpointError as error:
        problems.append(f"the checkpoint does not verify: {error}")
        return report
    checkpoint = signed.checkpoint
    if not checkpoint.origin.endswith(f"/ballots/{data['ballot_id']}"):
        problems.append(f"the checkpoint is for {checkpoint.origin}, not this ballot")
    entries = [b64url.decode(leaf["entry"]) for leaf in data["leaves"]]
    report.size = len(entries)
    if [leaf["index"] for leaf in data["leaves"]] != list(range(len(entries))):
        problems.append("the server's leaves are not numbered 0, 1, 2... in order")
    committed = ballot_log.counters(head["checkpoint"])
    if data["results"].get("status") != "shown":
        # Before the result, only the ballot's own entries are published: the tree cannot be recomputed yet.
        report.withheld = True
        report.counted = committed.get("answers_counted", 0)
        decoded = [json.loads(entry) for entry in entries]
        if not decoded or any(entry.get("kind") != "ballot" for entry in decoded):
            problems.append("before the result, the server should publish the ballot's own entries and nothing else")
        elif decoded[-1].get("key_id") != data["ballot"]["key"]["key_id"] or any(
            entry.get("ballot") != data["ballot_id"] for entry in decoded
        ):
            problems.append("the log commits another ballot or key than the one the API publishes")
        for index, entry in enumerate(decoded[1:], start=1):
            if _fixed(entry) != _fixed(decoded[0]):
                problems.append(f"entry {index} changes the kind, petition or audience entry 0 commits")
        if committed.get("credentials_issued", 0) < committed.get("answers_counted", 0):
            problems.append("more credentials answered than the checkpoint says were issued")
        if (data["results"].get("breakdown") or {}).get("status") == "shown":
            # Per-group figures come after the result, never before: a series of them read while answers arrive
            # tells each new answer's group, and below the minimum they are a small group's answers.
            problems.append("the server shows a breakdown by group while its result is withheld")
        if decoded:
            _check_texts(report, data, decoded[-1])
            counted, minimum = committed.get("answers_counted", 0), decoded[-1].get("min_answers")
            if data["results"].get("status") == "not_enough" and isinstance(minimum, int) and counted >= minimum:
                problems.append(
                    f"the server says not enough answers, but its checkpoint commits {counted} and the minimum its "
                    f"log commits is {minimum}"
                )
        for size_text, root_text in known.get("roots", {}).items():
            # Nothing to recompute yet, but a checkpoint seen before must not be contradicted: a root remembered
            # now catches, at the result, answers rewritten meanwhile and signed again.
            if int(size_text) > checkpoint.size:
                problems.append(f"the log had {size_text} entries before and has {checkpoint.size} now")
            elif int(size_text) == checkpoint.size and base64.b64decode(root_text) != checkpoint.root:
                problems.append(f"the log of {size_text} entries is not the one seen before: it was rewritten")
        if report.ok:
            _remember(state, state_file, data["url"], known, head["log_key"], checkpoint)
        return report
    if len(entries) != checkpoint.size:
        problems.append(f"the checkpoint covers {checkpoint.size} entries, the server gave {len(entries)}")
    hashes = [merkle.leaf_hash(entry) for entry in entries]
    if merkle.root_of(hashes[: checkpoint.size]) != checkpoint.root:
        problems.append("the entries do not hash to the checkpoint's root")
    for size_text, root_text in known.get("roots", {}).items():
        size = int(size_text)
        if size > len(hashes):
            problems.append(f"the log had {size} entries before and has {len(hashes)} now: entries were removed")
        elif merkle.root_of(hashes[:size]) != base64.b64decode(root_text):
            problems.append(f"the first {size} entries are not the ones seen before: the log was rewritten")
    _check_entries(report, data, [json.loads(entry) for entry in entries], committed)
    if report.ok:
        _remember(state, state_file, data["url"], known, head["log_key"], checkpoint)
    return report


def _remember(
    state: dict[str, Any],
    state_file: Path,
    url: str,
    known: dict[str, Any],
    log_key: str,
    checkpoint: notes.Checkpoint,
) -> None:
    """Keep the log key and the checkpoint's root for this ballot, so a later run sees any rewrite."""
    roots = dict(known.get("roots", {}))
    roots[str(checkpoint.size)] = base64.b64encode(checkpoint.root).decode()
    state[url] = {"log_key": known.get("log_key") or log_key, "roots": roots}
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, indent=1, sort_keys=True))


def _fixed(entry: dict[str, Any]) -> tuple[object, ...]:
    """What a ballot entry says no edit changes: the kind of ballot, its petition, who may answer (the audience, and
    its groups by id and kind; a name may be corrected). Every ballot entry must repeat entry 0's: the page is
    compared with the last entry, and a server could otherwise commit one audience in entry 0, issue to it, and
    show another written later (or count one kind of ballot under another's rules)."""
    groups = sorted((str(group.get("id")), str(group.get("kind"))) for group in entry.get("groups") or [])
    return entry.get("kind_of_ballot"), entry.get("petition"), entry.get("audience"), groups


def _check_texts(report: BallotReport, data: dict[str, Any], described: dict[str, Any]) -> None:
    """The question and options the API (and so the page and the result) shows are the ones the log commits: a
    server that swaps two labels would otherwise announce the count of one option under another's name."""
    published = data["ballot"]
    labels = list(described.get("options", []))
    if published.get("question") != described.get("question"):
        report.problems.append("the question the server shows is not the one its log commits")
    if [option.get("label") for option in published.get("options", [])] != labels:
        report.problems.append("the options the server shows are not the ones its log commits, in its order")
    shown = data["results"].get("options") or []
    if shown and [option.get("label") for option in shown] != labels:
        report.problems.append("the result names its options otherwise than the log commits")
    # Who may answer, likewise: a server that shows a poll as put to one department while its log commits another
    # audience would have issued credentials to people the page says were not asked.
    shown_groups = [(group.get("id"), group.get("name")) for group in published.get("groups") or []]
    committed_groups = [(group.get("id"), group.get("name")) for group in described.get("groups") or []]
    if published.get("audience") != described.get("audience") or shown_groups != committed_groups:
        report.problems.append("the audience the server shows is not the one its log commits")
    minimum = described.get("min_answers")
    if data["results"].get("min_answers") not in (None, minimum):
        report.problems.append(
            f"the server applies a minimum of {data['results'].get('min_answers')} answers, its log commits {minimum}"
        )


def _check_entries(
    report: BallotReport, data: dict[str, Any], entries: list[dict[str, Any]], committed: dict[str, int]
) -> None:
    problems = report.problems
    published = data["ballot"]
    spki = b64url.decode(published["key"]["spki"])
    if not entries or entries[0].get("kind") != "ballot":
        problems.append("entry 0 is not the ballot")
        return
    described: dict[str, Any] = entries[0]
    answers_started = False
    last: dict[str, tuple[int, list[int]]] = {}  # credential -> (revision, choice)
    public = blindrsa.PublicKey.from_spki(spki)
    if hashlib.sha256(spki).hexdigest() != published["key"]["key_id"]:
        problems.append("the key the API publishes does not match its own key id")
    for index, entry in enumerate(entries):
        kind = entry.get("kind")
        if kind == "ballot":
            if answers_started:
                problems.append(f"entry {index} changes the ballot after answers were counted")
            if entry.get("ballot") != data["ballot_id"] or entry.get("key_id") != described.get("key_id"):
                problems.append(f"entry {index} describes another ballot or another key")
            if _fixed(entry) != _fixed(entries[0]):
                problems.append(f"entry {index} changes the kind, petition or audience entry 0 commits")
            described = entry
            continue
        if kind != "answer":
            problems.append(f"entry {index} is of an unknown kind")
            continue
        answers_started = True
        report.answers += 1
        message, signature = b64url.decode(entry["message"]), b64url.decode(entry["signature"])
        try:
            blindrsa.verify(public, message, signature)
        except blindrsa.BlindSignatureError:
            problems.append(f"entry {index}'s credential was not issued by the ballot's key")
            continue
        choice = [int(position) for position in entry["choice"]]
        problem = _choice_problem(described, choice)
        if problem:
            problems.append(f"entry {index}: {problem}")
            continue
        credential = hashlib.sha256(message).hexdigest()
        revision = int(entry["revision"])
        before = last.get(credential, (0, []))[0]
        if revision != before + 1:
            problems.append(
                f"entry {index} is revision {revision} of a credential whose last revision was {before}: "
                "an answer counted twice, or one left out"
            )
            continue
        last[credential] = (revision, choice)
    if described.get("key_id") != published["key"]["key_id"]:
        problems.append("the log commits another key than the one the API publishes")
    report.counted = len(last)
    if "answers_counted" in committed and committed["answers_counted"] != report.counted:
        problems.append(
            f"the checkpoint commits {committed['answers_counted']} answers counted, the log holds {report.counted}"
        )
    if committed.get("credentials_issued", report.counted) < report.counted:
        problems.append("more credentials answered than the checkpoint says were issued")
    _check_texts(report, data, described)
    report.result = counting.tally(
        kind=BallotKind(described["kind_of_ballot"]),
        labels=list(described["options"]),
        choices=[choice for _revision, choice in last.values()],
        min_answers=int(described["min_answers"]),
    )
    _compare_result(report, data["results"], described)
    breakdown = data["results"].get("breakdown") or {}
    if breakdown.get("status") == "shown" and data["ballot"].get("state") != "closed":
        problems.append("the server shows a breakdown by group while the poll is open: its series tells each answer")


def _choice_problem(described: dict[str, Any], choice: list[int]) -> str | None:
    options = len(described["options"])
    if not choice:
        return "an empty answer"
    if any(not 0 <= position < options for position in choice):
        return "an answer names an option that does not exist"
    if len(set(choice)) != len(choice):
        return "an answer names an option twice"
    if len(choice) > int(described["max_choices"]):
        return "an answer makes more choices than the ballot allows"
    return None


def _compare_result(report: BallotReport, shown: dict[str, Any], described: dict[str, Any]) -> None:
    found = report.result
    status = shown.get("status")
    if status == "hidden":
        return
    if status == "not_enough":
        if isinstance(found, counting.Results):
            report.problems.append(f"the server says not enough answers, the log holds {found.answers}")
        return
    if not isinstance(found, counting.Results):
        report.problems.append("the server shows a result, but the log holds fewer answers than the minimum")
        return
    if shown.get("answers") != found.answers:
        report.problems.append(f"the server counts {shown.get('answers')} answers, the log {found.answers}")
    counts = [option["count"] for option in shown.get("options", [])]
    if counts != [option.count for option in found.options]:
        report.problems.append(f"the published counts {counts} are not the log's {[o.count for o in found.options]}")
    if found.kind is BallotKind.ranked:
        rounds = [list(r["counts"]) for r in shown.get("rounds", [])]
        if rounds != [list(r.counts) for r in found.rounds] or shown.get("winner") != found.winner:
            report.problems.append("the published instant-runoff rounds are not the log's")
    _compare_breakdown(report, [option.count for option in found.options], shown.get("breakdown"), described)


def _compare_breakdown(
    report: BallotReport, totals: list[int], breakdown: dict[str, Any] | None, described: dict[str, Any]
) -> None:
    """What an outsider can check of a breakdown by group: that the poll the log describes has one (put to two
    groups or more, one choice per answer) and its rows are those groups; that it agrees with the recounted option
    counts (first choices, for ranked); and that it keeps app/reports/suppression.py's promises, with the minimum
    the log commits, not one the server names beside its figures. Its cells themselves rest on the server's word:
    no leaf names a group."""
    if not breakdown or breakdown.get("status") != "shown":
        return
    problems = report.problems
    committed = described.get("groups") or []
    if len(committed) < 2 or (described.get("kind_of_ballot") == "multiple" and int(described["max_choices"]) > 1):
        # app/ballots/audiences.has_breakdown: a multiple-choice poll's leaves would solve its cells.
        problems.append("the server shows a breakdown by group of a poll the log says has none")
        return
    k = int(described["min_answers"])
    if breakdown.get("min_group_size") != k:
        problems.append(
            f"the breakdown says it suppresses figures under {breakdown.get('min_group_size')}, but the log "
            f"commits the poll's minimum as {k}"
        )
    raw_rows = [row for row in breakdown.get("rows", []) if isinstance(row, dict)]
    named = [row.get("group") for row in raw_rows]
    if len(named) != len(set(named)) or set(named) != {*(group.get("id") for group in committed), None}:
        problems.append("the breakdown's rows are not the poll's groups, as the log commits them, and the rest")
    rows = [list(row.get("counts") or []) for row in raw_rows]
    if any(len(row) != len(totals) for row in rows):
        problems.append("the breakdown's rows do not have one figure per option")
        return
    for position, total in enumerate(totals):
        column = [row[position] for row in rows]
        shown = [count for count in column if count is not None]
        hidden = len(column) - len(shown)
        if any(type(count) is not int or count < 0 for count in shown):
            problems.append("the breakdown holds a figure that is not a count")
            return
        if any(0 < count < k for count in shown):
            problems.append(f"the breakdown shows a figure under {k} for option {position}")
        if sum(shown) > total or (hidden == 0 and sum(shown) != total):
            problems.append(f"the breakdown's figures for option {position} do not add up to its count, {total}")
        if hidden == 1:
            problems.append(f"the breakdown suppresses one figure alone for option {position}: it is the rest's sum")
        residual = total - sum(shown)
        if 0 < hidden < len(column) and (residual < k or residual <= hidden):
            # Rules b and c: what the suppressed figures add up to must itself be a group of k, and more than one
            # answer each (unless the whole column is suppressed, when nothing could hide the few).
            problems.append(
                f"the breakdown's suppressed figures for option {position} add up to {residual}: under {k}, or one "
                "answer each, they give themselves away"
            )
    for row in rows:
        if None in row and any(count is not None for count in row) and not any(row_count for row_count in row):
            problems.append("a row of the breakdown shows only zeros beside a suppressed figure")
