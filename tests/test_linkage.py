"""The linkage attack (issue 18, "Anonymity that survives metadata"): after a production-like day (batching on,
Redis on, the worker's jobs run, a committed database of its own), an attacker reading only raw data (every table
with its physical order, the SQLite file and WAL, PostgreSQL's dead tuples, the logs, copies of Redis) tries to
tie each anonymous signature and comment to an account.

The bound the design promises (docs/security.md): the author is hidden among every account that held a credential
for that petition and did not use it by name, and never among fewer than k (settings.min_group_size) without
being told first. Asserted: every anonymous action's candidate set keeps at least min(bound, k) accounts. Only the
joins the real author does not escape are applied (one that excludes the author taught the attacker nothing true);
the failure message prints every narrowed set with the joins that narrowed it, and those that would on their own.

Issue 19's ways of carrying a wallet are part of the day: a forfeit, a phone linked by code (the linking protocol
over HTTP) that then signs anonymously, and a wallet recovered by its code on a new laptop that then comments. The
attacker takes every linking request as a moment its account was active: the hourly tallies of the linking routes
and pages, the linking rate limits' windows in Redis, and rows that carry only a day (a wallet's check) dated by
their xmin among timed rows.

Issue #25's polls are part of the day: a poll put to every member (its credential in every wallet's bundle), a
ratification poll put to the screens petition's signers after leadership responded and a second question put to
the same signers in the afternoon, answered by signers with a name (their signer credential collected in the
bundle) and anonymous ones (theirs kept with their signature's batch, fetched cookie-less under its nullifier),
each exchanging it cookie-less for the poll's credential, once per poll for those who answer both; every
answer goes cookie-less and waits for its batch, and one member changes his answer after the first was counted.
Every counted answer (each revision, the superseded one included) and every exchange is an anonymous action. The
bound (docs/architecture.md, "ballot credentials"): an answer hides among the accounts that held the poll's
credential, which for a members' poll are the accounts its issuance rows name, and for a signers' poll the
petition's signers: the accounts issued its signer credential with a name, and the token holders an anonymous
signer hides among. Asserted as for signatures: at least min(bound, k) candidates each. And for the signers' poll,
the question of the ballot's design: which signature answered? The attacker sees every signature (named ones with
their account), every answer, exchange and kept signer reply, and for each answer and exchange keeps the
signatures it cannot rule out; it must keep at least min(signatures that could answer, k) of them.

A second scenario plays the operator holding every key: it also opens every sealed value and recomputes every
keyed hash the application computes, for every account; no anonymous action may be tied to an account.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app as application
from app.ballots.exchange import signer_tag
from tests.linkage import adversary, journey
from tests.server_process import scratch_database

pytestmark = pytest.mark.linkage


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The day, once per database; the database stays until both scenarios have read it."""
    folder = tmp_path_factory.mktemp(f"linkage-{request.param}")
    with scratch_database(request.param, folder, "linkage") as url:
        with journey.Day(request.param, url, folder) as running:
            capture = journey.run(running)
            runtime = running.runtime
        yield {"capture": capture, "truth": running.truth, "runtime": runtime}


def _evidence(capture: journey.Capture) -> adversary.Evidence:
    return adversary.Evidence(
        kind=capture.kind,
        database_url=capture.database_url,
        files=capture.files,
        log_lines=capture.log_lines,
        redis_copies=capture.redis_copies,
        settings=capture.settings,
        ended_at=capture.ended_at,
        public_polls=capture.public_polls,
    )


def _author_of(truth: journey.Truth, attacker: adversary.Adversary):
    def answerer(action: adversary.Action) -> journey.PollAnswer | None:
        if "signer_tag" in action.row:
            return next(
                (
                    a
                    for a in truth.answers
                    if a.signer_message is not None
                    and signer_tag(a.ballot_id, a.signer_message) == action.row["signer_tag"]
                ),
                None,
            )
        return next((a for a in truth.answers if a.message == action.row.get("message")), None)

    def author(action: adversary.Action) -> int | None:
        if action.kind in ("answer", "exchange"):
            found = answerer(action)
            return found.account_id if found is not None else None
        if action.kind.endswith("(which signature)"):  # the answerer's signature: its account, or its key
            found = answerer(action)
            if found is None or found.signature_message is None:
                return found.account_id if found is not None else None
            return next(
                (
                    key
                    for key, row in attacker.signature_keys.items()
                    if row.get("token_message") == found.signature_message
                ),
                None,
            )
        if action.kind == "signature":
            message = action.row.get("token_message")
            return next((s.account_id for s in truth.signatures if s.message == message), None)
        body = action.row.get("body")
        return next((c.account_id for c in truth.comments if body in (c.body, truth.edits.get(c.body))), None)

    return author


def _attack(day: dict[str, Any], operator: adversary.OperatorKeys | None) -> str:
    capture, truth = day["capture"], day["truth"]
    attacker = adversary.Adversary(_evidence(capture), operator)
    actions = attacker.attack()
    verdicts = adversary.judge(actions, _author_of(truth, attacker), k=int(capture.settings["min_group_size"]))
    names = {account: name for name, account in truth.accounts.items()}
    report = "\n".join(verdict.describe(names) for verdict in verdicts)
    report += "\n" + "\n".join(attacker.notes + [f"refused: {line}" for line in truth.refused])
    # The attacker found every anonymous action of the day, and knows whose each is only through the joins.
    assert sorted(v.author or 0 for v in verdicts if v.action.kind == "signature") == sorted(
        s.account_id for s in truth.signatures
    ), report
    assert sorted(v.author or 0 for v in verdicts if v.action.kind == "comment") == sorted(
        c.account_id for c in truth.comments
    ), report
    # Issue #25: every answer written (each credential's revisions) and every exchange is found and is someone's.
    answers = [v for v in verdicts if v.action.kind == "answer"]
    assert {bytes(v.action.row["message"]) for v in answers} == {a.message for a in truth.answers}, report
    exchanges = [v for v in verdicts if v.action.kind == "exchange"]
    # One exchange per signer credential and poll: a signer answering both signers' polls exchanged twice.
    exchanged = {(a.ballot_id, a.signer_message) for a in truth.answers if a.signer_message}
    assert len(exchanges) == len(exchanged), report
    assert all(v.author is not None for v in verdicts if v.action.ballot_id is not None), report
    assert any(v.action.row.get("superseded") for v in answers), "no changed answer was counted:\n" + report
    linked = [verdict for verdict in verdicts if not verdict.holds]
    assert not linked, (
        f"{len(linked)} of {len(verdicts)} anonymous actions narrowed below the bound "
        f"(min(bound, k={capture.settings['min_group_size']})):\n{report}"
    )
    return report


def test_an_attacker_with_the_database_logs_and_redis_cannot_narrow_any_anonymous_action_below_the_bound(
    day: dict[str, Any],
) -> None:
    _attack(day, None)


def test_the_operator_holding_every_key_cannot_tie_any_anonymous_action_to_an_account(day: dict[str, Any]) -> None:
    runtime = day["runtime"]
    operator = adversary.OperatorKeys(
        keyed_hash=runtime.keyring.keyed_hash,
        open_sealed=lambda sealed, context: runtime.sealer.open(sealed, context=context),
        source=Path(application.__file__).parent,
    )
    _attack(day, operator)
