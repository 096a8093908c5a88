"""The attacker of the linkage suite: reads raw data only, and tries to tie each anonymous action to an account.

It imports nothing from the application. It reads:
- every table raw, with physical order (SQLite `rowid`; PostgreSQL `ctid` and `xmin`);
- the SQLite file and WAL bytes (carving deleted records out of them), and PostgreSQL's heap pages through
  `pageinspect`, dead tuples included;
- every application log line with its time;
- copies of Redis (every key, its value and its remaining lifetime) taken over the day;
- the deployment's public configuration (batch interval, k).

For each anonymous action it finds in the data (a signature row without an account, a comment without an author,
a poll's counted answer or exchange of a signer credential), it starts from the accounts that held the credential
and did not use it by name (`_ballot_actions` says who that is for a poll), and runs every join below; each join
answers a set of accounts the author must be among (or nothing), with how it got there:

  time windows   sessions, issuances, named rows and log lines (attributed to accounts by their timing) against
                 the action's moment as dated by its batch (checkpoint minute, signed hour), its physical or id
                 order among timed rows (rowid, ctid, xmin, the comment id sequence), the request log, the comment
                 digest, Redis rate-limit lifetimes and the anonymous queue's copies;
  order          issuance rows' physical order zipped with the logged wallet requests: who was issued when;
                 "issued before the batch": only holders issued a token before the entry was published;
  shared keys    rate-limit counters keyed by one hash of the account across actions: more comment hits than
                 named comments, under a hash whose other counters line up with an account's sign-in;
  stored secrets the action's token, nullifier, id or text found in a row (live or dead, in a page, the file or
                 the WAL) that carries an account id;
  counting       tokens issued, spent by name and anonymous signatures (reported per petition);
  rows holding it a row without an account that holds the action's secret (a signer reply under a signature's
                 nullifier), dated by its own xmin or place among its table's timed rows;
  route lines    request log lines of the answer and exchange routes, and their rank against the rows' order.

For a poll put to a petition's signers it also asks which signature answered (`_signature_actions`): every join
above read as a set of signatures, a value of the answer or exchange equal to, or a hash of, one kept with a
signature (token, nullifier, signer reply, signer issuance), and the same transaction as a signature's row.

The operator scenario (`OperatorKeys`) adds what every key allows: unsealing every sealed value, and recomputing
every keyed hash the application computes (purposes read from its source) for every account, petition and action.

`judge` then applies the joins that hold for the real author (a join the author escapes tells the attacker
nothing true) and reports each narrowed candidate set with the joins that narrowed it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.linkage.raw import (
    FINE,
    HOUR,
    MINUTE,
    Table,
    _account_columns,
    _carve_owners,
    _int,
    _naive,
    _precision,
    postgresql_tuples,
    read_postgresql,
    read_sqlite,
)

# Tables whose account column names who receives or is subject to the row, not who acted.
PASSIVE_TABLES = {"users", "deliveries", "outbox_messages", "notifications", "role_grants"}
# Tables whose rows others change later: only these columns date the account's own act.
OWNED_TIMES = {"petitions": {"created_at"}, "organization_rules": {"updated_at"}, "petition_organizers": {"added_at"}}
NEAR = timedelta(minutes=10)  # how close in time the attacker looks for an account's activity
SAME_REQUEST = timedelta(seconds=2)  # a row and the log line of the request that wrote it
BURST_GAP = timedelta(seconds=30)  # one person's requests follow one another closer than this
GRANULARITY = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400, "year": 365 * 86400}
# An open linking session kept in Redis under a hash of its account, living 11 minutes from its opening.
SESSION_KEY = re.compile(r"(?P<action>[a-z-]*link[a-z-]*):(?P<subject>[0-9a-f]{16,})$")
SESSION_SECONDS = 660
LIMIT_KEY = re.compile(
    r"LIMITER/(?P<action>[^/]+)/(?P<subject>[^/]+)/(?P<amount>\d+)/(?P<multiples>\d+)/"
    r"(?P<granularity>[a-z]+)$"
)


# -- what the attacker is given --------------------------------------------------------------------------------


@dataclass
class RedisCopy:
    at: datetime
    keys: list[dict[str, Any]]


@dataclass
class Evidence:
    kind: str  # "sqlite" or "postgresql"
    database_url: str
    files: dict[str, bytes]  # SQLite: "db", "db-wal"
    log_lines: list[str]
    redis_copies: list[Any]  # objects with .at and .keys
    settings: dict[str, Any]
    ended_at: datetime
    # Anyone polling the polls' public pages: (moment, poll, credentials_issued, answers_counted, checkpoint size).
    public_polls: list[tuple[datetime, int, int, int, int]] = field(default_factory=list)


@dataclass
class OperatorKeys:
    """The operator's extra power: the deployment's keys, as the application's own functions that use them."""

    keyed_hash: Callable[[str, str], str]  # (purpose, value) -> hex
    open_sealed: Callable[[bytes, str], str]  # (sealed, context) -> plaintext, raises when it does not open
    source: Path  # the application's source, for the purposes and contexts it uses


# -- what it finds ---------------------------------------------------------------------------------------------


@dataclass
class Join:
    name: str
    accounts: frozenset[int] | None  # None: this join says nothing about this action
    detail: str


# Timeline notes of a batch smaller than k (app/anonymous/service.py, app/comments/anonymous.py).
SMALL_BATCH_NOTES = ("small_comment_batch", "anonymous_small_batch")


@dataclass
class Action:
    kind: str  # "signature" or "comment"
    table: str
    petition_id: int
    row: dict[str, Any]
    base: frozenset[int]  # held the credential and did not use it by name
    joins: list[Join] = field(default_factory=list)
    # Published (or edited) in a batch the petition's timeline notes publicly as smaller than k: the bound
    # promises k only to those not told first, and the page and the client tell the person before they act.
    told: str | None = None
    ballot_id: int | None = None  # answers and exchanges (issue #25): their poll

    @property
    def label(self) -> str:
        ident = self.row.get("id") or self.row.get("signer_tag")
        if self.ballot_id is not None:
            return f"anonymous {self.kind} {ident!s:.12} for poll {self.ballot_id}"
        return f"anonymous {self.kind} {ident!s:.12} on petition {self.petition_id}"


@dataclass
class Verdict:
    action: Action
    author: int | None
    candidates: frozenset[int]
    narrowed_by: list[tuple[str, int, int, str]]  # join, size before, size after, detail
    misled: list[str]  # joins the author escapes (wrong for this action)
    alone: list[tuple[str, int, str]]  # other joins that narrow the base on their own: join, size, detail
    bound: int
    required: int

    @property
    def holds(self) -> bool:
        return len(self.candidates) >= self.required or (self.action.told is not None and len(self.candidates) >= 1)

    def describe(self, names: dict[int, str]) -> str:
        who = lambda ids: "{" + ", ".join(sorted(names.get(i, f"#{i}") for i in ids)) + "}"
        lines = [
            (
                f"{self.action.label} (author {names.get(self.author or 0, self.author)}): "
                f"{len(self.candidates)} candidate(s) {who(self.candidates)}; bound {self.bound}, "
                f"required >= {self.required}: {'ok' if self.holds else 'LINKED'}"
            )
        ]
        if self.action.told is not None and len(self.candidates) < self.required:
            lines.append(f"    below k, and told first: {self.action.told}")
        for name, before, after, detail in self.narrowed_by:
            lines.append(f"    narrowed {before} -> {after} by {name}: {detail}")
        for name, size, detail in self.alone:
            lines.append(f"    (also narrows {self.bound} -> {size} on its own: {name}: {detail})")
        escaped: dict[str, int] = defaultdict(int)
        for name in self.misled:
            escaped[name.split(" (")[0]] += 1
        for name, times in escaped.items():
            times_text = f", {times} times" if times > 1 else ""
            lines.append(f"    (not applied, the author escapes it: {name}{times_text})")
        return "\n".join(lines)


@dataclass
class Event:
    account: int
    start: datetime
    precision: float  # seconds the moment may be off by (upwards)
    source: str

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.precision)


@dataclass
class LogLine:
    time: datetime
    precision: float
    data: dict[str, Any]

    @property
    def route(self) -> str:
        return str(self.data.get("route") or "")

    @property
    def method(self) -> str:
        return str(self.data.get("method") or "")


# -- the attacker ----------------------------------------------------------------------------------------------


def _is_comment_table(table: Table) -> bool:
    return "comment" in table.name and "body" in table.columns and "revision" not in table.name


class Adversary:
    def __init__(self, evidence: Evidence, operator: OperatorKeys | None = None) -> None:
        self.evidence = evidence
        self.operator = operator
        self.notes: list[str] = []  # what it found that is not about one action (counting, mismatches)

    # -- reading everything ------------------------------------------------------------------------------------

    def read(self) -> None:
        evidence = self.evidence
        if evidence.kind == "sqlite":
            self.tables = read_sqlite(evidence.database_url.removeprefix("sqlite:///"))
        else:
            self.tables = read_postgresql(evidence.database_url)
        self.accounts = {int(row["id"]) for row in self.tables["users"].rows}
        self.heap = postgresql_tuples(evidence.database_url, self.tables) if evidence.kind == "postgresql" else []
        self.logs = []
        for line in evidence.log_lines:
            data = json.loads(line)
            moment = _naive(datetime.fromisoformat(data["time"]))
            self.logs.append(LogLine(moment, _precision(moment), data))
        self.logs.sort(key=lambda line: line.time)
        self.ended_at = _naive(evidence.ended_at)
        self.day_start = min([line.time for line in self.logs] or [self.ended_at]) - timedelta(hours=1)
        self.batch_seconds = float(evidence.settings.get("anonymous_batch_seconds") or 0)
        self.max_delay = max(
            [self.batch_seconds]
            + [
                float(value)
                for name, value in evidence.settings.items()
                if "max" in name and "seconds" in name and value
            ]
        )
        self.k = int(evidence.settings.get("min_group_size") or 5)
        self.names = self._names()

    def _names(self) -> dict[int, str]:
        """Only the operator can open the users' sealed names; anyone else calls accounts by id."""
        names = {account: f"#{account}" for account in self.accounts}
        if self.operator is None:
            return names
        for row in self.tables["users"].rows:
            for column in ("display_name_sealed", "email_sealed"):
                value = row.get(column)
                if isinstance(value, bytes):
                    opened = self._open(value, [f"users.{column.removesuffix('_sealed')}"])
                    if opened:
                        names[int(row["id"])] = f"{opened} (#{row['id']})"
                        break
        return names

    # -- the actions and their bounds --------------------------------------------------------------------------

    def actions(self) -> list[Action]:
        holders: dict[tuple[int, str], set[int]] = defaultdict(set)
        burned: dict[int, set[int]] = defaultdict(set)
        for table in self.tables.values():
            if "issu" not in table.name or "petition_id" not in table.columns:
                continue
            account_column = next(iter(_account_columns(table)), None)
            if account_column is None:
                continue
            named_purpose = next((word for word in ("discuss", "signer") if word in table.name), "sign")
            for row in table.rows:
                purpose = str(row.get("purpose") or named_purpose)
                if row.get(account_column) is not None:
                    holders[(int(row["petition_id"]), purpose)].add(int(row[account_column]))
                    if row.get("burned"):  # spent by a signature with a name, since withdrawn
                        burned[int(row["petition_id"])].add(int(row[account_column]))
        self.holders = holders
        named: dict[int, set[int]] = defaultdict(set)
        for petition, accounts in burned.items():
            named[petition] |= accounts
        signatures = self.tables.get("signatures")
        found: list[Action] = []
        if signatures is not None:
            for row in signatures.rows:
                if row.get("account_id") is not None:
                    named[int(row["petition_id"])].add(int(row["account_id"]))
        self.named = named
        for table in self.tables.values():
            if "token_message" in table.columns and _account_columns(table):
                account_column = _account_columns(table)[0]
                for row in table.rows:
                    if row.get(account_column) is None and row.get("token_message") is not None:
                        petition = int(row["petition_id"])
                        base = holders.get((petition, "sign"), set(self.accounts)) - named[petition]
                        found.append(Action("signature", table.name, petition, row, frozenset(base)))
            if _is_comment_table(table):
                author = next((c for c in ("author_id", "account_id", "user_id") if c in table.columns), None)
                for row in table.rows:
                    anonymous = (author is None or row.get(author) is None) and (
                        "pseudonym" not in table.columns or row.get("pseudonym") is not None
                    )
                    if anonymous and row.get("petition_id") is not None:
                        petition = int(row["petition_id"])
                        base = holders.get((petition, "discuss")) or set(self.accounts)
                        found.append(Action("comment", table.name, petition, row, frozenset(base)))
        return found + self._ballot_actions()

    # -- polls (issue #25) -------------------------------------------------------------------------------------

    def _ballot_actions(self) -> list[Action]:
        """Every counted answer (each revision, superseded ones included) and every exchange of a signer credential
        for a poll's: anonymous actions of the poll's credential holders.

        The design's promise (docs/architecture.md, "ballot credentials"; docs/security.md, the bound): an answer
        hides among every account that held the poll's credential. For a poll put to every member those are the
        accounts its issuance rows name (the wallet's bundle). For a poll put to a petition's signers the credential
        comes only by a cookie-less exchange, so its holders are the petition's signers: the accounts issued the
        signer credential with a name, and the anonymous signers, who hide among the petition's token holders that
        did not sign with a name. An exchange is the same person's first step, with the same bound."""
        ballots = {int(row["id"]): row for row in self.tables.get("ballots", Table("", [], [])).rows}
        self.ballot_rows = ballots
        self.ballot_holders: dict[int, set[int]] = defaultdict(set)
        for table in self.tables.values():
            if "issu" in table.name and "ballot_id" in table.columns and _account_columns(table):
                account_column = _account_columns(table)[0]
                for row in table.rows:
                    if row.get(account_column) is not None:
                        self.ballot_holders[int(row["ballot_id"])].add(int(row[account_column]))
        found: list[Action] = []
        for table in self.tables.values():
            if "ballot_id" not in table.columns or _account_columns(table):
                continue
            kind = (
                "answer"
                if "choice" in table.columns and "message" in table.columns
                else "exchange"
                if "signer_tag" in table.columns
                else None
            )
            if kind is None:
                continue
            for row in table.rows:
                ballot = ballots.get(int(row["ballot_id"]))
                if ballot is None:
                    continue
                petition = int(ballot["petition_id"]) if ballot.get("petition_id") is not None else 0
                base = (
                    self.signer_base(petition)
                    if str(ballot.get("audience")) == "signers"
                    else self.ballot_holders.get(int(row["ballot_id"]), set(self.accounts))
                )
                found.append(Action(kind, table.name, petition, row, frozenset(base), ballot_id=int(row["ballot_id"])))
        return found

    def signer_base(self, petition: int) -> set[int]:
        """Who can hold a signer credential of the petition: accounts issued one (by name), and the accounts an
        anonymous signer hides among (its token holders that did not sign with a name)."""
        return set(self.holders.get((petition, "signer"), set())) | (
            self.holders.get((petition, "sign"), set()) - self.named[petition]
        )

    # -- evidence that is not about one action -----------------------------------------------------------------

    def _db_events(self) -> list[Event]:
        """The moments accounts did something, as rows tied to them state. Rows an account receives (mail,
        notification deliveries) or that others change later (a petition row its creator owns, a role granted to
        it) say when something happened to it, not when it acted: only their creation time counts, if any."""
        events: list[Event] = []
        for table in self.tables.values():
            account_columns = _account_columns(table)
            if table.name in PASSIVE_TABLES:
                continue
            only = OWNED_TIMES.get(table.name)
            for row in table.rows:
                owners = {
                    int(row[c]) for c in account_columns if isinstance(row.get(c), int) and row[c] in self.accounts
                }
                if not owners:
                    continue
                for column in table.columns:
                    value = row.get(column)
                    if not isinstance(value, (datetime, date)) or (only is not None and column not in only):
                        continue
                    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
                    precision = _precision(value)
                    candidates = [(moment, f"{table.name}.{column}")]
                    if moment > self.ended_at + timedelta(hours=1):  # an expiry: the start it was computed from
                        candidates.extend(
                            (moment - timedelta(days=days), f"{table.name}.{column}-{days}d")
                            for days in (self.evidence.settings.get("session_days") or 14, 1, 7, 30)
                        )
                        candidates.append(
                            (
                                moment - timedelta(minutes=self.evidence.settings.get("code_minutes") or 15),
                                f"{table.name}.{column}-code",
                            )
                        )
                    for start, source in candidates:
                        if self.day_start <= start <= self.ended_at + timedelta(hours=1):
                            events.extend(Event(owner, start, precision, source) for owner in owners)
        return events

    def _attribute_logs(self, events: list[Event]) -> list[Event]:
        """Log lines carry no account; a line written by the request that wrote an account's row (same moment),
        or in the one hour only one account was active, is that account's; so is the burst of lines around it."""
        fine = [e for e in events if e.precision <= FINE]
        hourly: dict[datetime, set[int]] = defaultdict(set)
        for event in events:
            if event.precision <= HOUR:
                hourly[event.start.replace(minute=0, second=0, microsecond=0)].add(event.account)
        owner: dict[int, int] = {}
        for index, line in enumerate(self.logs):
            if line.precision > FINE:
                continue
            close = {e.account for e in fine if abs(e.start - line.time) <= SAME_REQUEST}
            if len(close) == 1:
                owner[index] = next(iter(close))
                continue
            in_hour = hourly.get(line.time.replace(minute=0, second=0, microsecond=0), set())
            if not close and len(in_hour) == 1:
                owner[index] = next(iter(in_hour))
        derived: list[Event] = []
        burst: list[int] = []

        def close_burst() -> None:
            owners = {owner[i] for i in burst if i in owner}
            if len(owners) == 1:
                account = next(iter(owners))
                derived.extend(
                    Event(account, self.logs[i].time, FINE, f"log burst ({self.logs[i].method} {self.logs[i].route})")
                    for i in burst
                )

        previous = None
        for index, line in enumerate(self.logs):
            if line.precision > FINE:
                continue
            if previous is not None and line.time - previous > BURST_GAP:
                close_burst()
                burst = []
            burst.append(index)
            previous = line.time
        close_burst()
        return derived

    def _issuance_times(self) -> list[Event]:
        """Issuance rows in physical order, one group per wallet request, zipped with the logged wallet requests."""
        events = []
        # Each logged wallet request, or as many as an hourly tally line counts (dated by its hour).
        lines = []
        for line in self.logs:
            if line.method == "POST" and "wallet/tokens" in line.route and line.data.get("status") == 200:
                lines += [line] * int(line.data.get("count") or 1)
        for table in self.tables.values():
            if "issu" not in table.name or not _account_columns(table):
                continue
            account_column = _account_columns(table)[0]
            if self.heap:
                # Every version of every row, dead ones included: a row's first version carries the xmin of the
                # transaction that issued it, even when a later update moved the live version elsewhere.
                first: dict[tuple[Any, ...], int] = {}
                for heap_tuple in self.heap:
                    if heap_tuple.table == table.name:
                        key = (
                            _int(heap_tuple.values.get(account_column)),
                            _int(heap_tuple.values.get("petition_id")),
                            heap_tuple.values.get("purpose"),
                            _int(heap_tuple.values.get("ballot_id")),
                        )
                        first[key] = min(first.get(key, heap_tuple.xmin), heap_tuple.xmin)
                ordered = [
                    {account_column: key[0], "__tag": xmin}
                    for key, xmin in sorted(first.items(), key=lambda item: item[1])
                ]
            else:
                ordered = [{**row, "__tag": None} for row in sorted(table.rows, key=lambda r: r["__pos"])]
            groups: list[tuple[Any, Any]] = []
            for row in ordered:
                tag = (row.get(account_column), row["__tag"])
                if not groups or groups[-1] != tag:
                    groups.append(tag)
            # Each group is one of the logged requests, in order; a request that issued nothing of this table (a
            # wallet collecting only a poll's credential, issue #25) leaves a line without a group, so group i is
            # one of the lines i .. i + slack.
            slack = len(lines) - len(groups)
            if lines and slack >= 0:
                for i, (account, _xmin) in enumerate(groups):
                    earliest, latest = lines[i], lines[i + slack]
                    if account in self.accounts:
                        precision = (latest.time - earliest.time).total_seconds() + latest.precision
                        events.append(
                            Event(int(account), earliest.time, precision, f"{table.name} physical order x wallet log")
                        )
            else:
                self.notes.append(
                    f"{table.name}: {len(groups)} issuance groups in physical order, {len(lines)} logged "
                    "wallet requests: not zipped"
                )
        return events

    def _rows_dated_by_xmin(self, events: list[Event]) -> list[Event]:
        """Rows tied to an account that state no time finer than the day (a wallet's check, kept with the day it
        was started): their xmin among the transactions of timed rows dates when the account wrote them."""
        if self.evidence.kind != "postgresql":
            return []
        pairs = sorted(self._xmin_pairs(exclude=None))
        consistent = _longest_increasing(pairs)
        found = []
        for table in self.tables.values():
            account_columns = _account_columns(table)
            if not account_columns or table.name in PASSIVE_TABLES:
                continue
            for row in table.rows:
                if row.get("__xmin") is None or self._timed(row) is not None:
                    continue
                owners = {
                    int(row[c]) for c in account_columns if isinstance(row.get(c), int) and row[c] in self.accounts
                }
                low = next((m for x, m in reversed(consistent) if x < row["__xmin"]), None)
                high = next((m for x, m in consistent if x > row["__xmin"]), None)
                if not owners or low is None or high is None or high < low:
                    continue
                found += [
                    Event(owner, low, max(FINE, (high - low).total_seconds()), f"{table.name} xmin order")
                    for owner in owners
                ]
        return found

    def _hourly_tallies(self, events: list[Event]) -> list[Event]:
        """An hourly tally line (a wallet's, a linking session's, a page's requests counted through the hour) in
        an hour when only one account did anything else is that account's."""
        hourly: dict[datetime, set[int]] = defaultdict(set)
        for event in events:
            if event.precision <= HOUR:
                hourly[event.start.replace(minute=0, second=0, microsecond=0)].add(event.account)
        found = []
        for line in self.logs:
            if line.precision < HOUR or not line.route:
                continue
            active = hourly.get(line.time, set())
            if len(active) == 1:
                found.append(
                    Event(
                        next(iter(active)),
                        line.time,
                        HOUR,
                        f"hourly tally ({line.method} {line.route}, {line.data.get('count')})",
                    )
                )
        return found

    def _redis_windows(self) -> list[dict[str, Any]]:
        windows: dict[tuple[str, str, int], dict[str, Any]] = {}
        for copy in self.evidence.redis_copies:
            at = _naive(copy.at)
            for key in copy.keys:
                found = LIMIT_KEY.search(key["key"]) or SESSION_KEY.search(key["key"])
                if not found or key["pttl_ms"] is None or key["pttl_ms"] < 0:
                    continue
                period = (
                    int(found["multiples"]) * GRANULARITY.get(found["granularity"], 1)
                    if "multiples" in found.groupdict()
                    else SESSION_SECONDS
                )
                first = at + timedelta(milliseconds=key["pttl_ms"]) - timedelta(seconds=period)
                try:
                    count = int(key["value"])
                except (TypeError, ValueError):
                    count = 1
                slot = (found["action"], found["subject"], int(first.timestamp()))
                window = windows.setdefault(
                    slot,
                    {
                        "action": found["action"],
                        "subject": found["subject"],
                        "first": first,
                        "period": period,
                        "count": 0,
                    },
                )
                window["count"] = max(window["count"], count)
        return list(windows.values())

    def _attribute_subjects(self, windows: list[dict[str, Any]], events: list[Event]) -> dict[str, int]:
        """A rate-limit subject (a hash) is an account's when its windows opened when that account, and no other,
        was doing something."""
        fine = [e for e in events if e.precision <= FINE]
        hourly: dict[datetime, set[int]] = defaultdict(set)
        for event in events:
            if event.precision <= HOUR:
                hourly[event.start.replace(minute=0, second=0, microsecond=0)].add(event.account)
        votes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for window in windows:
            close = {e.account for e in fine if abs(e.start - window["first"]) <= SAME_REQUEST}
            if not close and not ("anon" in window["action"] or "credential" in window["action"]):
                close = hourly.get(window["first"].replace(minute=0, second=0, microsecond=0), set())
            if len(close) == 1:
                votes[window["subject"]][next(iter(close))] += 1
        subjects = {}
        for subject, tally in votes.items():
            ranked = sorted(tally.items(), key=lambda item: -item[1])
            if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
                subjects[subject] = ranked[0][0]
        if self.operator is not None:
            subjects.update(self._operator_subjects(windows))
        return subjects

    # -- the operator's keys -----------------------------------------------------------------------------------

    def _source_strings(self, pattern: str) -> set[str]:
        assert self.operator is not None
        found = set()
        for path in self.operator.source.rglob("*.py"):
            found.update(re.findall(pattern, path.read_text(errors="replace")))
        return found

    def _purposes(self, actions: Iterable[str] = ()) -> set[str]:
        purposes = self._source_strings(r"""(?:keyed_hash|\.key|_key|derive)\(\s*f?["']([^"'{}]+)["']""")
        purposes |= {"rate-limit", "comment-pseudonym", "pseudonym"}
        for action in actions:
            purposes |= {f"rate-limit/{action}", f"rate-limit:{action}", f"rate-limit-{action}", action}
        return purposes

    def _subjects(self, account: int) -> list[str]:
        email = self.emails.get(account)
        subjects = [str(account), f"account:{account}", f"user:{account}"]
        if email:
            subjects += [email, email.lower(), f"address:{email.lower()}"]
        return subjects

    @property
    def emails(self) -> dict[int, str]:
        if not hasattr(self, "_emails"):
            self._emails = {}
            if self.operator is not None:
                for row in self.tables["users"].rows:
                    value = row.get("email_sealed")
                    opened = self._open(value, ["users.email"]) if isinstance(value, bytes) else None
                    if opened:
                        self._emails[int(row["id"])] = opened
        return self._emails

    def _hash_book(self, actions: Iterable[str] = ()) -> dict[str, tuple[int, str]]:
        """Every keyed hash of every account the operator can compute: hex -> (account, how)."""
        assert self.operator is not None
        petitions = [int(row["id"]) for row in self.tables.get("petitions", Table("", [], [])).rows]
        book = {}
        for purpose in self._purposes(actions):
            for account in self.accounts:
                values = self._subjects(account)
                for petition in petitions:
                    values += [f"{petition}:{account}", f"{account}:{petition}", f"{petition}:account:{account}"]
                for value in values:
                    digest = self.operator.keyed_hash(purpose, value)
                    book[digest] = (account, f"keyed_hash({purpose!r}, {value!r})")
        return book

    def _operator_subjects(self, windows: list[dict[str, Any]]) -> dict[str, int]:
        book = self._hash_book({window["action"] for window in windows})
        return {window["subject"]: book[window["subject"]][0] for window in windows if window["subject"] in book}

    def _contexts(self) -> list[str]:
        if not hasattr(self, "_contexts_found"):  # the source is read once, not once per action
            contexts = self._source_strings(r"""Sealed\(\s*["']([^"']+)["']""")
            contexts |= self._source_strings(r"""context\s*=\s*f?["']([^"'{]+)""")
            self._contexts_found = sorted(contexts)
        return self._contexts_found

    def _open(self, value: bytes, contexts: list[str]) -> str | None:
        assert self.operator is not None
        for context in contexts:
            try:
                return self.operator.open_sealed(value, context)
            except Exception:  # noqa: BLE001, S112 (any failure to open is "not this context")
                continue
        return None

    # -- the attack --------------------------------------------------------------------------------------------

    def attack(self) -> list[Action]:
        self.read()
        found = self.actions()
        events = self._db_events()
        events += self._attribute_logs(events)
        events += self._issuance_times()
        events += self._rows_dated_by_xmin(events)
        events += self._hourly_tallies(events)
        windows = self._redis_windows()
        subjects = self._attribute_subjects(windows, events)
        for window in windows:
            account = subjects.get(window["subject"])
            if account is not None:
                events.append(Event(account, window["first"], FINE, f"rate-limit window {window['action']}"))
        self.events = events
        self.windows, self.subjects = windows, subjects
        self._counting(found)
        self.all_actions = found
        secrets_index = self._stored_secrets(found)
        book = self._hash_book({w["action"] for w in windows}) if self.operator is not None else {}
        for action in found:
            action.told = self._told(action)
            for moment_join in self._moments(action):
                action.joins.append(moment_join)
            action.joins.append(self._issued_before(action))
            action.joins.extend(self._shared_counters(action))
            action.joins.extend(secrets_index.get(id(action), []))
            action.joins.extend(self._secret_rows_dated(action))
            action.joins.extend(self._route_lines(action))
            if self.operator is not None:
                action.joins.extend(self._operator_joins(action, book))
        return found + self._signature_actions(found)

    def active(self, low: datetime, high: datetime, margin: timedelta = NEAR) -> frozenset[int]:
        """Accounts with something stored or logged against them between `low` and `high` (within `margin`)."""
        low, high = low - margin, high + margin
        return frozenset(e.account for e in self.events if e.precision <= HOUR and e.start <= high and e.end >= low)

    def _window_join(self, name: str, low: datetime | None, high: datetime | None, detail: str) -> Join:
        if low is None or high is None or high < low:
            return Join(name, None, detail + " (no window)")
        return Join(name, self.active(low, high), f"{detail}: {low:%H:%M:%S}..{high:%H:%M:%S}")

    # Each of these dates the action; the activity around that moment is the join's answer.
    def _moments(self, action: Action) -> list[Join]:
        joins = []
        row, table = action.row, self.tables[action.table]
        batch = timedelta(seconds=self.max_delay)
        previous = self._previous_publication(action)
        if action.kind == "signature":
            published = self._checkpoint_time(action)
            if published is not None:
                precision = timedelta(seconds=_precision(published))
                low = max(published - batch - timedelta(minutes=1), previous or datetime.min)
                joins.append(
                    self._window_join(
                        "checkpoint time",
                        low,
                        published + precision,
                        f"published in the batch of {published:%H:%M}"
                        + (f", after the one of {previous:%H:%M}" if previous else ""),
                    )
                )
        for moment, source in self._edits(action):
            # An edit is the author acting again: written at once (the hour it was made), or with a batch.
            precision = timedelta(seconds=_precision(moment))
            joins.append(
                self._window_join(f"{source} (written at once)", moment, moment + precision, f"{source} = {moment}")
            )
            joins.append(
                self._window_join(
                    f"{source} (written by a batch)", moment - batch, moment + precision, f"{source} = {moment}"
                )
            )
        for column in table.columns:
            value = row.get(column)
            if isinstance(value, datetime) and column not in ("edited_at",):
                precision = timedelta(seconds=_precision(value))
                low = max(value - batch, previous or datetime.min)
                after = f", after the previous batch at {previous:%H:%M}" if previous else ""
                joins.append(
                    self._window_join(f"{table.name}.{column}", low, value + precision, f"{column} = {value}{after}")
                )
        joins.append(self._physical_order(action))
        joins.extend(self._public_count(action))
        if action.row.get("__xmin") is not None:
            joins.append(self._xmin_order(action))
        if action.kind == "comment":
            joins.append(self._comment_sequence(action))
            joins.extend(self._comment_log(action))
            joins.append(self._digest(action))
        joins.extend(self._redis_moments(action))
        return joins

    def _told(self, action: Action) -> str | None:
        """The public note of a smaller batch at the hour this action was published or edited, if any (a petition's
        notes: a poll's answers have none)."""
        if action.ballot_id is not None:
            return None
        hours = {
            value.replace(tzinfo=None)
            for column, value in action.row.items()
            if column in ("created_at", "edited_at", "signed_hour") and isinstance(value, datetime)
        }
        events = self.tables.get("petition_events")
        for row in events.rows if events is not None else []:
            if (
                row.get("kind") in SMALL_BATCH_NOTES
                and row.get("petition_id") == action.petition_id
                and isinstance(row.get("at"), datetime)
                and row["at"].replace(tzinfo=None) in hours
            ):
                return f"the timeline's public note '{row['kind']}' at {row['at']:%H:%M}"
        return None

    def _edits(self, action: Action) -> list[tuple[datetime, str]]:
        """When the action's author changed it: its edited_at, and its revisions' times."""
        found = []
        if isinstance(action.row.get("edited_at"), datetime):
            found.append((action.row["edited_at"], f"{action.table}.edited_at"))
        for table in self.tables.values():
            if "revision" in table.name and "comment_id" in table.columns and action.kind == "comment":
                for row in table.rows:
                    if row.get("comment_id") == action.row.get("id"):
                        found += [
                            (value, f"{table.name}.{column}")
                            for column, value in row.items()
                            if isinstance(value, datetime)
                        ]
        return found

    def _publication(self, action: Action) -> datetime | None:
        if action.kind == "signature":
            published = self._checkpoint_time(action)
            if published is not None:
                return published
        moment = action.row.get("created_at") or action.row.get("signed_hour") or action.row.get("counted_hour")
        return moment if isinstance(moment, datetime) else None

    def _previous_publication(self, action: Action) -> datetime | None:
        """The petition's previous batch of the same kind: a batch takes everything waiting, so this entry
        arrived after it."""
        mine = self._publication(action)
        if mine is None or not hasattr(self, "all_actions"):
            return None
        earlier = [
            moment
            for other in self.all_actions
            if other.kind == action.kind
            and other.petition_id == action.petition_id
            and other.ballot_id == action.ballot_id
            and (moment := self._publication(other)) is not None
            and moment < mine
        ]
        return max(earlier) if earlier else None

    def _checkpoint_time(self, action: Action) -> datetime | None:
        index = action.row.get("log_index")
        checkpoints = self.tables.get("log_checkpoints")
        if index is None or checkpoints is None:
            return None
        covering = sorted(
            (row["size"], row["created_at"])
            for row in checkpoints.rows
            if row["petition_id"] == action.petition_id
            and row["size"] > index
            and isinstance(row.get("created_at"), datetime)
        )
        return covering[0][1] if covering else None

    def _timed(self, row: dict[str, Any]) -> datetime | None:
        """The finest moment a row states (to the minute at least)."""
        moments = [
            value
            for key, value in row.items()
            if isinstance(value, datetime)
            and not key.startswith("__")
            and value <= self.ended_at + timedelta(hours=1)
            and _precision(value) <= MINUTE
        ]
        return min(moments) if moments else None

    def _between(self, name: str, ordered: list[tuple[Any, datetime | None, bool]], detail: str) -> Join:
        """`ordered`: (position, moment, is the action) sorted by position: the action lies between its timed
        neighbours."""
        index = next(i for i, item in enumerate(ordered) if item[2])
        low = next((m for _p, m, _a in reversed(ordered[:index]) if m is not None), None)
        high = next((m for _p, m, _a in ordered[index + 1 :] if m is not None), None)
        return self._window_join(name, low, high, detail)

    def _physical_order(self, action: Action) -> Join:
        table = self.tables[action.table]
        ordered = sorted(
            ((row["__pos"], None if row is action.row else self._timed(row), row is action.row) for row in table.rows),
            key=lambda item: item[0],
        )
        kind = "rowid" if self.evidence.kind == "sqlite" else "ctid"
        return self._between(f"{kind} order in {table.name}", ordered, f"{kind} {action.row['__pos']}")

    def _xmin_order(self, action: Action) -> Join:
        """xmin is the writing transaction's id: it orders rows of every table in time. Timed rows whose xmin
        agrees with their time (the longest consistent run) date the transactions around the action's."""
        consistent = _longest_increasing(sorted(self._xmin_pairs(exclude=action.row)))
        ordered: list[tuple[Any, datetime | None, bool]] = sorted(
            [(x, m, False) for x, m in consistent] + [(action.row["__xmin"], None, True)],
            key=lambda item: (item[0], item[2]),
        )
        return self._between("xmin order", ordered, f"xmin {action.row['__xmin']}")

    def _xmin_pairs(self, exclude: dict[str, Any] | None) -> list[tuple[int, datetime]]:
        pairs: list[tuple[int, datetime]] = []
        for table in self.tables.values():
            own = sorted(
                (row["__xmin"], moment)
                for row in table.rows
                if row is not exclude and row.get("__xmin") is not None and (moment := self._timed(row)) is not None
            )
            # A table whose rows are updated later shows it: their times do not follow their xmin. Only its longest
            # run whose times do is trusted (an updated row's time is its first version's, its xmin the update's).
            pairs += own if all(a[1] <= b[1] for a, b in itertools.pairwise(own)) else _longest_increasing(own)
        return pairs

    def _comment_sequence(self, action: Action) -> Join:
        table = self.tables[action.table]
        ids = [row["id"] for row in table.rows if isinstance(row.get("id"), int)]
        if not ids or not isinstance(action.row.get("id"), int) or max(ids) > 10 * len(ids) + 100:
            return Join("comment id sequence", None, "ids are not one sequence")
        ordered = sorted(
            (
                (row["id"], None if row is action.row or row.get("pseudonym") else self._timed(row), row is action.row)
                for row in table.rows
            ),
            key=lambda item: item[0],
        )
        return self._between("comment id sequence", ordered, f"id {action.row['id']}")

    def _comment_lines(self) -> list[LogLine]:
        return [
            line
            for line in self.logs
            if line.method == "POST"
            and re.search(r"comments/?$", line.route)
            and line.data.get("status") in (201, 202)
            and line.precision <= FINE
        ]

    def _comment_log(self, action: Action) -> list[Join]:
        """The k-th logged comment POST is comment k (one id sequence); a POST no named comment matches is an
        anonymous one's."""
        joins = []
        lines = self._comment_lines()
        table = self.tables[action.table]
        rows = sorted((row for row in table.rows if isinstance(row.get("id"), int)), key=lambda row: row["id"])
        if lines and len(lines) == len(rows) and isinstance(action.row.get("id"), int):
            moment = lines[[row["id"] for row in rows].index(action.row["id"])].time
            joins.append(
                self._window_join(
                    "comment log rank",
                    moment,
                    moment,
                    f"comment {action.row['id']} is logged POST #{rows.index(action.row) + 1}",
                )
            )
        named_times = [self._timed(row) for row in table.rows if not (row.get("pseudonym") or row is action.row)]
        unmatched = [
            line for line in lines if not any(t is not None and abs(t - line.time) <= SAME_REQUEST for t in named_times)
        ]
        created = action.row.get("created_at")
        if isinstance(created, datetime):
            span = timedelta(seconds=_precision(created))
            unmatched = [
                line for line in unmatched if created - timedelta(seconds=self.max_delay) <= line.time <= created + span
            ]
        if unmatched and len(unmatched) < len(lines) + 1:
            accounts = frozenset().union(*(self.active(line.time, line.time) for line in unmatched))
            joins.append(
                Join(
                    "unmatched comment POST lines",
                    accounts,
                    f"{len(unmatched)} logged comment POST(s) no named comment explains",
                )
            )
        return joins

    def _digest(self, action: Action) -> Join:
        petitions = self.tables.get("petitions")
        if petitions is None or "comment_digest_through" not in petitions.columns:
            return Join("comment digest", None, "no digest state")
        for row in petitions.rows:
            if row.get("comment_digest_through") == action.row.get("id") and row.get("id") == action.petition_id:
                sent = row.get("comment_digest_sent_at")
                if isinstance(sent, datetime):
                    return self._window_join(
                        "comment digest", sent - timedelta(minutes=5), sent, f"digested through this comment at {sent}"
                    )
        return Join("comment digest", None, "not the digest's last comment")

    def _secrets(self, action: Action) -> list[bytes]:
        """What of the action a row tied to an account could carry: its values and the hashes of its token."""
        found: list[bytes] = []
        for column, value in action.row.items():
            if column.startswith("__") or column in ("body_html", "state", "visibility", "review"):
                continue
            if isinstance(value, bytes) and len(value) >= 16:
                found += [
                    value,
                    hashlib.sha256(value).hexdigest().encode(),
                    hashlib.sha256(value).digest(),
                    base64.urlsafe_b64encode(value).rstrip(b"="),
                ]
            elif isinstance(value, str) and len(value) >= 12:
                found.append(value.encode())
        return found

    def _redis_moments(self, action: Action) -> list[Join]:
        """Redis copies: the queue holding the action's token or text, a limiter window of an anonymous route."""
        joins = []
        raw_needles = [needle for needle in self._secrets(action) if len(needle) >= 16]
        needles = [n.decode("latin-1") for n in raw_needles if all(32 <= b < 127 for b in n)]
        previous = None
        for copy in self.evidence.redis_copies:
            text = json.dumps([key["value"] for key in copy.keys] + [key["key"] for key in copy.keys])
            if any(needle in text for needle in needles):
                low = _naive(previous.at) if previous is not None else self.day_start
                joins.append(
                    self._window_join(
                        "Redis copy holding it",
                        low,
                        _naive(copy.at),
                        f"first in the Redis copy of {_naive(copy.at):%H:%M}",
                    )
                )
                break
            previous = copy
        published = self._published_bounds(action)
        words = {
            "comment": ("comment", "discuss"),
            "answer": ("ballot", "answer", "poll"),
            "exchange": ("ballot", "exchange", "poll", "signer"),
        }.get(action.kind, ("sign", "token", "submit"))
        anonymous_windows = [
            w
            for w in self.windows
            if w["subject"] not in self.subjects
            and ("anon" in w["action"] or "discuss" in w["action"] or "credential" in w["action"])
            and any(word in w["action"] for word in words)
            and (published is None or published[0] <= w["first"] <= published[1])
        ]
        if anonymous_windows:
            accounts = frozenset().union(*(self.active(w["first"], w["first"]) for w in anonymous_windows))
            joins.append(
                Join(
                    "anonymous route limiter lifetimes",
                    accounts,
                    f"{len(anonymous_windows)} window(s) opened at "
                    + ", ".join(f"{w['first']:%H:%M:%S}" for w in anonymous_windows),
                )
            )
        return joins

    def _published_bounds(self, action: Action) -> tuple[datetime, datetime] | None:
        created = action.row.get("created_at") or action.row.get("signed_hour") or action.row.get("counted_hour")
        if not isinstance(created, datetime):
            return None
        return created - timedelta(seconds=self.max_delay) - timedelta(hours=1), created + timedelta(hours=1)

    def _secret_rows_dated(self, action: Action) -> list[Join]:
        """A row elsewhere that holds the action's token, nullifier, credential or reply (a signer reply kept under
        a signature's nullifier, an exchange's tag) was written when that row's transaction ran: its xmin among the
        timed rows (PostgreSQL), or its place among its table's timed rows, dates the action too."""
        needles = [needle for needle in self._secrets(action) if len(needle) >= 16]
        joins = []
        if not hasattr(self, "_anonymous_blobs"):  # rows naming no account, each as one blob, made once
            self._anonymous_blobs = [
                (
                    table,
                    row,
                    b"\x00".join(
                        v if isinstance(v, bytes) else str(v).encode()
                        for k, v in row.items()
                        if not k.startswith("__") and v is not None
                    ),
                )
                for table in self.tables.values()
                if not _account_columns(table)  # rows naming an account are the stored-secrets join's
                for row in table.rows
            ]
        for table, row, blob in self._anonymous_blobs:
            if table.name != action.table and any(needle in blob for needle in needles):
                if row.get("__xmin") is not None:
                    consistent = _longest_increasing(sorted(self._xmin_pairs(exclude=row)))
                    ordered: list[tuple[Any, datetime | None, bool]] = sorted(
                        [(x, m, False) for x, m in consistent] + [(row["__xmin"], None, True)],
                        key=lambda item: (item[0], item[2]),
                    )
                    joins.append(
                        self._between(f"xmin of a {table.name} row holding it", ordered, f"xmin {row['__xmin']}")
                    )
                ordered = sorted(
                    (
                        (other["__pos"], None if other is row else self._timed(other), other is row)
                        for other in table.rows
                    ),
                    key=lambda item: item[0],
                )
                joins.append(
                    self._between(f"place of a {table.name} row holding it", ordered, f"position {row['__pos']}")
                )
        return joins

    def _public_count(self, action: Action) -> list[Join]:
        """A signers' poll's public count of credentials ("hidden among N") is its exchanges. When it moves between
        two looks at the page without any answer being counted (no batch), the exchanges it adds happened since
        the previous look: the k-th exchange row in physical order is the one that took the count to k."""
        if action.kind != "exchange" or not self.evidence.public_polls:
            return []
        rows = sorted(
            (row for row in self.tables[action.table].rows if row.get("ballot_id") == action.ballot_id),
            key=lambda row: row["__pos"],
        )
        rank = next(i for i, row in enumerate(rows) if row is action.row) + 1
        seen = [item for item in self.evidence.public_polls if item[1] == action.ballot_id]
        for (before, _b, issued_before, counted_before, _s), (after, _a, issued, counted, _size) in itertools.pairwise(
            seen
        ):
            if issued_before < rank <= issued:
                if counted != counted_before:
                    return []  # counted with a batch of answers: dated by the batch only
                return [
                    self._window_join(
                        "public count of credentials",
                        _naive(before),
                        _naive(after),
                        f"the count went {issued_before} -> {issued} between two looks at the poll's page",
                    )
                ]
        return []

    def _route_lines(self, action: Action) -> list[Join]:
        """Lines of the request log for the route that takes this kind of action (answers, exchanges), to the
        second: the author was active at one of them; and when there are as many lines as rows, the k-th row in
        physical order (written in turn, as an exchange is) is the k-th line."""
        routes = {"answer": ("/ballots/", "/answers"), "exchange": ("/ballots/", "/exchange")}.get(action.kind)
        if routes is None:
            return []
        every = [line for line in self.logs if line.precision <= FINE and all(part in line.route for part in routes)]
        bounds = self._published_bounds(action)
        lines = [line for line in every if bounds is None or bounds[0] <= line.time <= bounds[1]]
        if not lines:
            return []
        accounts = frozenset().union(*(self.active(line.time, line.time) for line in lines))
        joins = [Join("request log lines of its route", accounts, f"{len(lines)} line(s) of {routes[1]}")]
        rows = sorted(self.tables[action.table].rows, key=lambda row: row["__pos"])
        if len(rows) == len(every):
            moment = every[next(i for i, row in enumerate(rows) if row is action.row)].time
            joins.append(
                self._window_join(
                    "request log rank", moment, moment, f"row {action.row['__pos']} is logged {routes[1]} at {moment}"
                )
            )
        return joins

    # -- which signature answered a signers' poll (issue #25) ---------------------------------------------------

    ANONYMOUS_SIGNATURE = 1_000_000_000  # keys of anonymous signatures; a signature with a name is its account

    def _signature_actions(self, actions: list[Action]) -> list[Action]:
        """For each answer and exchange of a poll put to a petition's signers: which of the petition's signatures
        is its author's? The candidates are every signature whose signer can hold the signer credential: those with
        a name whose account was issued one, and the anonymous ones whose signature asked for one (a reply is kept
        under its nullifier). Joins: every account-level join of the action, read as signatures (a set of accounts
        allows their named signatures, and every anonymous signature as soon as one of them could have signed
        anonymously); a value of the action (its tag, reply, credential) equal to, or a hash of, a value kept with
        a signature (token, nullifier, signer reply, signer issuance); and the same transaction (xmin) as a row of
        a signature."""
        signatures = self.tables.get("signatures")
        replies = self.tables.get("signer_replies")
        if signatures is None:
            return []
        self.signature_keys: dict[int, dict[str, Any]] = {}
        found = []
        for action in actions:
            ballot = self.ballot_rows.get(action.ballot_id or 0)
            if action.kind not in ("answer", "exchange") or ballot is None or str(ballot.get("audience")) != "signers":
                continue
            petition = action.petition_id
            kept = {
                str(row["nullifier"]): bytes(row["blind_signature"])
                for row in (replies.rows if replies is not None else [])
                if row.get("petition_id") == petition
            }
            named_holders = self.holders.get((petition, "signer"), set())
            hiding = self.holders.get((petition, "sign"), set()) - self.named[petition]
            values: dict[int, list[bytes]] = defaultdict(list)  # signature key: values kept with it
            xmins: dict[int, set[int]] = defaultdict(set)
            for index, row in enumerate(signatures.rows):
                if row.get("petition_id") != petition:
                    continue
                if row.get("account_id") is None and row.get("token_message") is not None:
                    nullifier = hashlib.sha256(bytes(row["token_message"])).hexdigest()
                    if nullifier not in kept:
                        continue  # asked for no signer credential: cannot answer
                    key = self.ANONYMOUS_SIGNATURE + index
                    self.signature_keys[key] = row
                    values[key] += [bytes(row["token_message"]), nullifier.encode(), kept[nullifier]]
                elif row.get("account_id") in named_holders:
                    key = int(row["account_id"])
                else:
                    continue
                values[key] += [v for v in row.values() if isinstance(v, bytes) and len(v) >= 16]
                if row.get("__xmin") is not None:
                    xmins[key].add(int(row["__xmin"]))
            for table in self.tables.values():
                if "signer" in table.name and "issu" in table.name:
                    for row in table.rows:
                        if row.get("petition_id") == petition and row.get("account_id") in named_holders:
                            key = int(row["account_id"])
                            values[key] += [bytes(row["blind_signature"])] if row.get("blind_signature") else []
                            if row.get("__xmin") is not None:
                                xmins[key].add(int(row["__xmin"]))
                if table.name == "signer_replies":
                    for row in table.rows:
                        owner = next((k for k, v in values.items() if str(row.get("nullifier")).encode() in v), None)
                        if owner is not None and row.get("__xmin") is not None:
                            xmins[owner].add(int(row["__xmin"]))
            anonymous = frozenset(k for k in values if k >= self.ANONYMOUS_SIGNATURE)
            base = frozenset(values) | frozenset(a for a in named_holders if a in self.accounts)

            level = Action(
                f"{action.kind} (which signature)", action.table, petition, action.row, base, ballot_id=action.ballot_id
            )
            level.joins = [
                Join(
                    join.name,
                    None
                    if join.accounts is None
                    else frozenset(a for a in join.accounts if a in named_holders)
                    | (anonymous if join.accounts & hiding else frozenset()),
                    join.detail,
                )
                for join in action.joins
            ]
            own = [v for k, v in action.row.items() if not k.startswith("__") and isinstance(v, (bytes, str))]
            own_bytes = [v if isinstance(v, bytes) else v.encode() for v in own if len(v) >= 16]
            prefix = b"undersigned/signer-tag/v1/" + str(action.ballot_id).encode() + b"/"
            for key, kept_values in values.items():
                for value in kept_values:
                    forms = {
                        "the value itself": value,
                        "its SHA-256": hashlib.sha256(value).hexdigest().encode(),
                        "the exchange tag of it": hashlib.sha256(prefix + value).hexdigest().encode(),
                    }
                    how = next(
                        (
                            name
                            for name, form in forms.items()
                            for mine in own_bytes
                            if len(form) >= 16 and (form in mine or mine in form)
                        ),
                        None,
                    )
                    if how is not None:
                        level.joins.append(
                            Join("a value kept with a signature", frozenset({key}), f"{how}, of {value[:12].hex()}...")
                        )
                        break
                if action.row.get("__xmin") is not None and action.row["__xmin"] in xmins[key]:
                    level.joins.append(
                        Join(
                            "the same transaction as a signature's row",
                            frozenset({key}),
                            f"xmin {action.row['__xmin']}",
                        )
                    )
            found.append(level)
        return found

    def _issued_before(self, action: Action) -> Join:
        """Only a holder issued the credential before the entry was published can have written it."""
        published = self._checkpoint_time(action) if action.kind == "signature" else None
        created = action.row.get("created_at") or action.row.get("signed_hour") or action.row.get("counted_hour")
        if published is None and isinstance(created, datetime):
            published = created + timedelta(seconds=_precision(created))
        if published is None:
            return Join("issued before the batch", None, "no publication time")
        sources: tuple[str, ...]
        if action.ballot_id is not None:
            ballot = self.ballot_rows.get(action.ballot_id, {})
            if str(ballot.get("audience")) == "signers":  # exchanged cookie-less: no issuance row names its holder
                return Join("issued before the batch", None, "a signers' poll: credentials come by exchange")
            holders, sources = self.ballot_holders.get(action.ballot_id), ("ballot_issuances",)
        else:
            purpose = "sign" if action.kind == "signature" else "discuss"
            holders, sources = self.holders.get((action.petition_id, purpose)), ("token_issuances", "discussion")
        if not holders:
            return Join("issued before the batch", None, "no issuance rows")
        first_issued: dict[int, datetime] = {}
        for event in self.events:
            if event.source.startswith(sources):  # an issuance row's own time, or its wallet request's
                moment = event.start  # issued no earlier than this
                if event.account not in first_issued or moment < first_issued[event.account]:
                    first_issued[event.account] = moment
        possible = frozenset(a for a in holders if a not in first_issued or first_issued[a] <= published)
        return Join("issued before the batch", possible, f"holders issued before {published:%H:%M}")

    def _shared_counters(self, action: Action) -> list[Join]:
        """Comment counters under an account's hash that count more comments than the account wrote by name."""
        if action.kind != "comment":
            return []
        comment_windows = [w for w in self.windows if "comment" in w["action"] and "anon" not in w["action"]]
        if not comment_windows:
            return []
        named: dict[int, list[datetime]] = defaultdict(list)
        for table in self.tables.values():
            if _is_comment_table(table):
                for row in table.rows:
                    author = row.get("author_id")
                    if author is not None and isinstance(row.get("created_at"), datetime):
                        named[int(author)].append(row["created_at"])
        created = action.row.get("created_at")
        extra: set[int] = set()
        unknown = False
        for window in comment_windows:
            end = window["first"] + timedelta(seconds=window["period"])
            if isinstance(created, datetime):
                span = timedelta(seconds=_precision(created))
                if end < created - timedelta(seconds=self.max_delay) or window["first"] > created + span:
                    continue
            account = self.subjects.get(window["subject"])
            if account is None:
                if window["count"] > 0:
                    unknown = True
                continue
            written = sum(1 for t in named[account] if window["first"] - SAME_REQUEST <= t < end)
            if window["count"] > written:
                extra.add(account)
        if unknown:
            return [Join("comment counters by account hash", None, "some counters' hashes are nobody's known")]
        return [
            Join(
                "comment counters by account hash",
                frozenset(extra),
                f"hashes counting more comments than their accounts signed: {sorted(extra)}",
            )
        ]

    def _stored_secrets(self, actions: list[Action]) -> dict[int, list[Join]]:
        """The action's token, nullifier, id or text in a row that names an account: live rows, dead tuples
        (PostgreSQL pages), deleted records carved out of the SQLite file and its WAL."""
        joins: dict[int, list[Join]] = defaultdict(list)
        needles = {id(action): self._secrets(action) for action in actions}
        for table in self.tables.values():
            account_columns = _account_columns(table)
            if not account_columns:
                continue
            for row in table.rows:
                owners = {int(row[c]) for c in account_columns if row.get(c) in self.accounts}
                if not owners:
                    continue
                blob = b"\x00".join(
                    v if isinstance(v, bytes) else str(v).encode()
                    for k, v in row.items()
                    if not k.startswith("__") and v is not None
                )
                for action in actions:
                    if row is action.row:
                        continue
                    if any(needle in blob for needle in needles[id(action)]):
                        joins[id(action)].append(
                            Join(
                                "secret stored with an account (live row)",
                                frozenset(owners),
                                f"{table.name} row {row['__pos']}",
                            )
                        )
        if self.evidence.kind == "postgresql":
            for heap_tuple in self.heap:
                table = self.tables[heap_tuple.table]
                owners = {
                    number
                    for column in _account_columns(table)
                    if (number := _int(heap_tuple.values.get(column))) in self.accounts
                }
                if not owners or not heap_tuple.dead:
                    continue
                blob = b"\x00".join(v for v in heap_tuple.values.values() if v)
                for action in actions:
                    if any(needle in blob for needle in needles[id(action)]):
                        joins[id(action)].append(
                            Join(
                                "secret next to an account in a dead tuple (pageinspect)",
                                frozenset(owners),
                                f"{table.name} tuple {heap_tuple.position}",
                            )
                        )
        else:
            specs = {
                name: (table.columns, _account_columns(table), table.types)
                for name, table in self.tables.items()
                if _account_columns(table)
            }
            windows: dict[bytes, list[tuple[set[int], str]]] = {}
            carved: set[tuple[Any, ...]] = set()
            for label, data in self.evidence.files.items():
                for action in actions:
                    for needle in needles[id(action)]:
                        if len(needle) < 32:
                            continue
                        start = data.find(needle)
                        while start != -1:
                            window = data[max(0, start - 500) : start + len(needle)]
                            if window not in windows:  # the same page, again in another WAL frame
                                windows[window] = _carve_owners(data, start, needle, specs, self.accounts)
                            for owners, table_name in windows[window]:
                                key = (id(action), table_name, frozenset(owners), label)
                                if key not in carved:
                                    carved.add(key)
                                    joins[id(action)].append(
                                        Join(
                                            f"secret next to an account in the SQLite {label} bytes",
                                            frozenset(owners),
                                            f"a {table_name} record carved at byte {start}",
                                        )
                                    )
                            start = data.find(needle, start + 1)
        return joins

    def _counting(self, actions: list[Action]) -> None:
        by_petition: dict[int, int] = defaultdict(int)
        for action in actions:
            if action.kind == "signature":
                by_petition[action.petition_id] += 1
        for petition, count in sorted(by_petition.items()):
            holders = self.holders.get((petition, "sign"), set())
            remaining = holders - self.named[petition]
            self.notes.append(
                f"counting, petition {petition}: {len(holders)} tokens issued, "
                f"{len(holders & self.named[petition])} spent by name, {count} anonymous: "
                f"{count} of the {len(remaining)} remaining holders signed anonymously"
                + (" (every one of them)" if count >= len(remaining) else "")
            )

    def _operator_joins(self, action: Action, book: dict[str, tuple[int, str]]) -> list[Join]:
        joins = []
        for column, value in action.row.items():
            if column.startswith("__") or not isinstance(value, str):
                continue
            for token in re.findall(r"[0-9a-f]{6,}", value):
                matches = {account for digest, (account, _how) in book.items() if digest.startswith(token)}
                if len(token) >= 6 and matches and len(matches) < len(self.accounts):
                    how = next(h for d, (a, h) in book.items() if d.startswith(token))
                    joins.append(
                        Join("keyed hash recomputed by the operator", frozenset(matches), f"{column} {value!r} = {how}")
                    )
        joins.extend(self._own_limiter_windows(action))
        contexts = self._contexts()
        for column, value in action.row.items():
            if isinstance(value, bytes) and not column.startswith("token_"):
                opened = self._open(value, contexts)
                if opened:
                    owners = {a for a, email in self.emails.items() if email in opened}
                    owners |= {a for a, name in self.names.items() if name.split(" (#")[0] in opened}
                    joins.append(
                        Join(
                            "sealed value opened by the operator",
                            frozenset(owners) or None,
                            f"{column} opens to {opened[:40]!r}",
                        )
                    )
        if action.kind == "comment":
            joins.extend(self._mail_joins(action, contexts))
        return joins

    def _own_limiter_windows(self, action: Action) -> list[Join]:
        """A limiter keyed by something the action's row keeps (its author tag, its token's hash): the operator
        recomputes the key's hash and finds the action's own window, opened when its request arrived."""
        assert self.operator is not None
        values = set()
        for column, value in action.row.items():
            if column.startswith("__"):
                continue
            if isinstance(value, str) and 16 <= len(value) <= 128:
                values.add(value)
            elif isinstance(value, bytes) and len(value) >= 16:
                values |= {hashlib.sha256(value).hexdigest(), base64.urlsafe_b64encode(value).rstrip(b"=").decode()}
        by_subject = defaultdict(list)
        for window in self.windows:
            by_subject[(window["action"], window["subject"])].append(window)
        joins: list[Join] = []
        for name in {window["action"] for window in self.windows}:
            for value in values:
                for subject in (value, f"credential:{value}", f"token:{value}", f"nullifier:{value}"):
                    for purpose in (f"rate-limit/{name}", "rate-limit"):
                        digest = self.operator.keyed_hash(purpose, subject.lower())
                        joins.extend(
                            self._window_join(
                                "the action's own limiter window (keyed hash recomputed by the operator)",
                                window["first"],
                                window["first"],
                                f"{name} window of keyed_hash({purpose!r}, {subject[:24]!r}...)",
                            )
                            for window in by_subject.get((name, digest), [])
                        )
        return joins

    def _mail_joins(self, action: Action, contexts: list[str]) -> list[Join]:
        """Mail is sealed; the operator opens it: a digest or reply mail quoting the comment dates it."""
        joins: list[Join] = []
        body = str(action.row.get("body") or "")
        if len(body) < 12:
            return joins
        for table in self.tables.values():
            if "outbox" not in table.name and "mail" not in table.name:
                continue
            for row in table.rows:
                created = row.get("created_at")
                if not isinstance(created, datetime):
                    continue
                for value in row.values():
                    if isinstance(value, bytes):
                        opened = self._open(value, contexts)
                        if opened and body[:40] in opened:
                            joins.append(
                                self._window_join(
                                    "mail quoting the comment (opened by the operator)",
                                    created - timedelta(minutes=5),
                                    created,
                                    f"{table.name} row {row['__pos']} created {created}",
                                )
                            )
        return joins


def _longest_increasing(pairs: list[tuple[int, datetime]]) -> list[tuple[int, datetime]]:
    """The longest run of (xmin, time) pairs whose times do not decrease as xmin grows (patience sorting)."""
    import bisect

    tails: list[datetime] = []
    tail_index: list[int] = []
    parent = [-1] * len(pairs)
    for i, (_x, moment) in enumerate(pairs):
        position = bisect.bisect_right(tails, moment)
        if position == len(tails):
            tails.append(moment)
            tail_index.append(i)
        else:
            tails[position] = moment
            tail_index[position] = i
        parent[i] = tail_index[position - 1] if position else -1
    run = []
    i = tail_index[-1] if tail_index else -1
    while i != -1:
        run.append(pairs[i])
        i = parent[i]
    return run[::-1]


# -- judging ---------------------------------------------------------------------------------------------------


def judge(actions: list[Action], author_of: Callable[[Action], int | None], k: int) -> list[Verdict]:
    """Apply every join the real author does not escape, in turn, and keep how each narrowed the set."""
    verdicts = []
    for action in actions:
        author = author_of(action)
        candidates = set(action.base)
        narrowed, misled, alone = [], [], []
        for join in action.joins:
            if join.accounts is None:
                continue
            if author is not None and author not in join.accounts:
                misled.append(f"{join.name} ({join.detail})")
                continue
            after = candidates & join.accounts
            if len(after) < len(candidates):
                narrowed.append((join.name, len(candidates), len(after), join.detail))
                candidates = after
            elif len(action.base & join.accounts) < len(action.base):
                alone.append((join.name, len(action.base & join.accounts), join.detail))
        bound = len(action.base)
        verdicts.append(Verdict(action, author, frozenset(candidates), narrowed, misled, alone, bound, min(bound, k)))
    return verdicts
