"""`undersigned client answer URL --choice N`: answer a poll from the command-line wallet (issue #25).

The poll's credential comes the way the browser gets it: for a poll put to every member, in the wallet's one bundle
(`collect` with every purpose: asking for one poll's credential alone would say which poll the worker means to
answer); for a poll put to a petition's signers, in exchange for the petition's signer credential (collected in the
bundle by a named signer), sent without cookies. The answer goes without cookies too, and can be sent again with
another choice until the poll closes: only the last counts. When the credentials must first be collected (signed
in), the anonymous part is queued for a random later moment, as `client sign --anonymous` does, so the cookie-less
requests do not follow the signed-in one within seconds; `client collect` beforehand lets answers go at once. The credential derives from the wallet secret, so any
device of the wallet answers with the same one, and changing the answer from another device replaces it.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.anonymous import derive
from app.clients import anonymous as client_module
from app.clients.anonymous import (
    ALL_PURPOSES,
    ClientError,
    Connection,
    KeyRequirement,
    Sender,
    Session,
    Wallet,
    _message,
    due_time,
    fetch_signer_reply,
    held,
    wallet_secret,
    when,
)
from app.clients.anonymous import collect as collect_credentials
from app.core import blindrsa
from app.core.b64url import decode as _b64d
from app.core.b64url import encode as _b64e


@dataclass(frozen=True)
class BallotTarget:
    base_url: str
    ballot_id: int


def parse_ballot_url(url: str) -> BallotTarget:
    """A poll's page (/polls/7) or its API address (/api/v1/ballots/7)."""
    found = re.match(r"^(https?://[^/?#]+)(?:/api/v1/ballots|/polls)/(\d+)(?:[/?#].*)?$", url.strip())
    if not found:
        raise ClientError("Give the poll's address, like https://undersigned.example.org/polls/7")
    return BallotTarget(base_url=found.group(1), ballot_id=int(found.group(2)))


def read_ballot(connection: Connection, ballot_id: int) -> dict[str, Any]:
    status, ballot = connection.anonymous("GET", f"/api/v1/ballots/{ballot_id}")
    if status != 200 or not isinstance(ballot, dict):
        raise ClientError(_message(ballot, f"Could not read poll {ballot_id}."))
    return ballot


def check_choice(ballot: dict[str, Any], choice: list[int]) -> None:
    """The same rules the server applies, said before anything is collected or sent."""
    positions = [option["position"] for option in ballot["options"]]
    if not choice:
        raise ClientError("Choose an option with --choice N (the options are numbered from 0).")
    if any(position not in positions for position in choice):
        raise ClientError(f"That option does not exist on this poll: choose among {', '.join(map(str, positions))}.")
    if len(set(choice)) != len(choice):
        raise ClientError("Each option once: the same --choice was given twice.")
    if len(choice) > ballot["max_choices"]:
        raise ClientError(f"This poll takes at most {ballot['max_choices']} choices.")


def check_group(ballot: dict[str, Any], group: int | None) -> None:
    """A group the poll's breakdown takes, said before anything is sent (the server checks again, and also that
    at least k of the group's members hold the credential)."""
    if group is None:
        return
    if not ballot.get("breakdown"):
        raise ClientError("This poll's result is not broken down by group: answer without --group.")
    ids = {int(item["id"]): item["name"] for item in ballot.get("groups", [])}
    if group not in ids:
        listed = ", ".join(f"{number} ({name})" for number, name in sorted(ids.items()))
        raise ClientError(f"--group {group} is not one this poll is put to; its groups are {listed}.")


def _ballot_credential(
    wallet: Wallet,
    *,
    base_url: str,
    email: str,
    ballot: dict[str, Any],
    connection: Connection,
    keys: KeyRequirement,
) -> dict[str, Any]:
    """Exchange the petition's signer credential for the poll's, without cookies; kept in the wallet."""
    ballot_id, petition_id = int(ballot["id"]), ballot["petition_id"]
    fetch_signer_reply(connection, wallet, base_url, email, petition_id)  # an anonymous signature's, once written
    signer = held(wallet, base_url, email, petition_id, "signer")
    if signer is None or signer.get("status") != "held":
        raise ClientError(_no_signer_credential(petition_id))
    secret = wallet_secret(wallet, base_url, email)
    if secret is None:
        raise ClientError("This wallet holds no secret for your account: `undersigned client collect` first.")
    key = ballot["key"]
    keys.require(petition_id=ballot_id, purpose="ballot", key_id=key["key_id"], spki=key["spki"])
    public = blindrsa.PublicKey.from_spki(_b64d(key["spki"]))
    credential = derive.credential(secret, purpose="ballot", ballot_id=ballot_id, key_id=key["key_id"], public=public)
    slot = f"{base_url}|{email.lower()}|{ballot_id}|ballot"
    pending = wallet["credentials"].get(slot)
    if pending is not None and pending.get("status") == "pending" and pending.get("key_id") == key["key_id"]:
        # The exchange sent before, told to come back after the batch: the same request, to complete it.
        message, blinded, inv = _b64d(pending["message"]), _b64d(pending["blinded"]), int(pending["inv"])
    else:
        message, blinded, inv = credential.message, credential.blinded_msg, credential.inv
    status, answer = connection.anonymous(
        "POST",
        f"/api/v1/ballots/{ballot_id}/exchange",
        {"message": signer["message"], "signature": signer["signature"], "blinded": _b64e(blinded)},
    )
    kept = {
        "petition_id": petition_id,
        "ballot_id": ballot_id,
        "purpose": "ballot",
        "key_id": key["key_id"],
        "spki": key["spki"],
        "message": _b64e(message),
        "derived": True,
    }
    if status == 202 and isinstance(answer, dict):
        wait = int(answer.get("come_back_in_seconds", 0))
        wallet["credentials"][slot] = {
            **kept,
            "blinded": _b64e(blinded),
            "inv": str(inv),
            "status": "pending",
            "come_back_at": client_module.clock() + wait,
        }
        raise ExchangeWaiting(wait)
    if status != 200:
        raise ClientError(_message(answer, "The server did not exchange your signer credential."))
    try:
        signature = blindrsa.finalize(public, message, _b64d(answer["blind_signature"]), inv)
    except (blindrsa.BlindSignatureError, ValueError, KeyError, TypeError):
        raise ClientError(
            "The server's reply to the exchange is not a valid credential for this poll's key: nothing was kept, "
            "and no answer was sent. Try again later; if it keeps happening, the server is not following the "
            "published rules."
        ) from None
    wallet["credentials"][slot] = {**kept, "signature": _b64e(signature), "status": "held"}
    return wallet["credentials"][slot]


class ExchangeWaiting(ClientError):
    """The server took the exchange for its next batch (202): the wallet keeps the pending request; the same
    command run again after the batch completes it and sends the answer."""

    def __init__(self, wait: int) -> None:
        self.wait = wait
        minutes = max(1, round(wait / 60))
        super().__init__(
            "Your signer credential was accepted for this poll, but the poll's credential is written with the "
            f"server's next batch (in about {minutes} min), so that the moment of this exchange does not say who "
            "you are; nothing was answered yet. This wallet keeps the pending exchange: run the same command again "
            "after the batch to complete it and send your answer (if fewer than k colleagues exchanged meanwhile, "
            "the server may ask you to come back once more)."
        )


QUEUED_WHY = (
    "so that the anonymous answer does not follow this run's signed-in collection from this computer within "
    "seconds, which would say whose it is"
)


def answer(
    *,
    session: Session,
    wallet: Wallet,
    target: BallotTarget,
    choice: list[int],
    keys: KeyRequirement,
    now: float,
    within_hours: float,
    save: Any = lambda: None,
    group: int | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """Answer the poll. With its credential (or, for a signers' poll, the signer credential) already in the wallet,
    the answer is sent now without cookies, and nothing signed in is sent in this run. Otherwise the credentials
    are collected first, signed in, and the anonymous part (the exchange and the answer) is queued for a random
    later moment, as `client sign --anonymous` queues a signature, and returned for `--now` or `client send`.
    Returns what happened, in words, and the queued action (None when sent)."""
    bare = Connection(target.base_url)  # no jar: this side could not send a cookie if it tried
    ballot = read_ballot(bare, target.ballot_id)
    _require_open(ballot)
    check_choice(ballot, choice)
    check_group(ballot, group)
    email = session.email
    # Only the last answer counts: an earlier one still queued for this poll would be sent after this one.
    replaced = _drop_queued(wallet, target)
    if not _ready(wallet, bare, base_url=target.base_url, email=email, ballot=ballot):
        # Everything due, all at once: the poll's credential (members) or the signer credential (named signers).
        collect_credentials(session, wallet, keys=keys, save=save, purposes=ALL_PURPOSES)
        if not _ready(wallet, bare, base_url=target.base_url, email=email, ballot=ballot):
            raise ClientError(
                _no_signer_credential(ballot["petition_id"]) if ballot["audience"] == "signers" else NONE_DUE
            )
        # The poll's key checked now as well as at the sending: a key shown to this worker alone is refused
        # before anything is queued.
        key = ballot["key"]
        keys.require(petition_id=target.ballot_id, purpose="ballot", key_id=key["key_id"], spki=key["spki"])
        item = {
            "id": secrets.token_hex(6),
            "kind": "answer",
            "base_url": target.base_url,
            "petition_id": ballot["petition_id"],
            "ballot_id": target.ballot_id,
            "email": email,
            "choice": choice,
            "group": group,
            "due": _due(now, within_hours, ballot),
        }
        wallet["outbox"].append(item)
        return (
            ("It replaces the answer queued before. " if replaced else "")
            + f"Queued: your answer to poll {target.ballot_id} will be sent {when(item['due'], now)}, {QUEUED_WHY}. "
            "Run `undersigned client send` then (from cron or a systemd timer, or leave `client send --wait` "
            "running): it does not sign in and sends no cookie. Collecting with `client collect` long before "
            "answering lets the next answer go at once."
        ), item
    try:
        said = send(
            bare, wallet, base_url=target.base_url, email=email, ballot=ballot, choice=choice, keys=keys, group=group
        )
    except ExchangeWaiting as waiting:
        said = str(waiting)
    return ("The answer queued before is dropped: this one replaces it. " if replaced else "") + said, None


def _drop_queued(wallet: Wallet, target: BallotTarget) -> bool:
    """Remove this poll's answers still queued in the wallet; whether there was one."""
    kept = [
        item
        for item in wallet["outbox"]
        if not (
            item["kind"] == "answer"
            and item["base_url"] == target.base_url
            and int(item["ballot_id"]) == target.ballot_id
        )
    ]
    dropped = len(kept) != len(wallet["outbox"])
    wallet["outbox"][:] = kept
    return dropped


NONE_DUE = (
    "This wallet holds no credential for this poll, and none is due to your account: it may be put to another "
    "group, or your credential was collected by a device whose wallet this file does not hold."
)


def _no_signer_credential(petition_id: int) -> str:
    return (
        f"This poll is put to the signers of petition {petition_id}, and this wallet holds no signer credential "
        "for it. A signer with a name collects one with the wallet (run this command again once your "
        "signature is in); an anonymous signer received one with the signature, on the device that signed."
    )


def _require_open(ballot: dict[str, Any]) -> None:
    if ballot["state"] != "open":
        raise ClientError(
            "This poll has closed: answers are no longer taken."
            if ballot["state"] == "closed"
            else "This poll is not open yet: try again once it opens."
        )


def _ready(wallet: Wallet, bare: Connection, *, base_url: str, email: str, ballot: dict[str, Any]) -> bool:
    """Whether the wallet can answer without signing in: it holds the poll's credential, or (a signers' poll) the
    petition's signer credential to exchange, fetched without cookies if an anonymous signature left it kept."""
    if _held(held(wallet, base_url, email, int(ballot["id"]), "ballot")):
        return True
    if ballot["audience"] != "signers" or ballot["petition_id"] is None:
        return False
    fetch_signer_reply(bare, wallet, base_url, email, ballot["petition_id"])
    return _held(held(wallet, base_url, email, ballot["petition_id"], "signer"))


def _held(credential: dict[str, Any] | None) -> bool:
    return credential is not None and credential.get("status") == "held"


def _due(now: float, within_hours: float, ballot: dict[str, Any]) -> float:
    """A random later moment (due_time's, as for signatures), but before the poll closes: ten minutes before at
    the latest, or now if it closes sooner."""
    return max(now, min(due_time(now, within_hours), _closes(ballot) - 600))


def _closes(ballot: dict[str, Any]) -> float:
    closes_at = datetime.fromisoformat(str(ballot["closes_at"]))
    return (closes_at if closes_at.tzinfo else closes_at.replace(tzinfo=UTC)).timestamp()


def send(
    bare: Connection,
    wallet: Wallet,
    *,
    base_url: str,
    email: str,
    ballot: dict[str, Any],
    choice: list[int],
    keys: KeyRequirement,
    group: int | None = None,
) -> str:
    """The anonymous part, without cookies: the exchange (a signers' poll whose credential is not held yet), then
    the answer. Returns what happened, in words."""
    ballot_id = int(ballot["id"])
    credential = held(wallet, base_url, email, ballot_id, "ballot")
    if not _held(credential) and ballot["audience"] == "signers":
        credential = _ballot_credential(
            wallet, base_url=base_url, email=email, ballot=ballot, connection=bare, keys=keys
        )
    if credential is None or not _held(credential):
        raise ClientError(NONE_DUE)
    key = ballot["key"]
    if credential["key_id"] != key["key_id"]:
        raise ClientError("The poll's key is not the one your credential is under: nothing was sent.")
    keys.require(petition_id=ballot_id, purpose="ballot", key_id=key["key_id"], spki=key["spki"])
    status, reply = bare.anonymous(
        "POST",
        f"/api/v1/ballots/{ballot_id}/answers",
        {"message": credential["message"], "signature": credential["signature"], "choice": choice, "group": group},
    )
    if status == 409 and "already counted" in _message(reply, ""):
        return "This answer is already counted: nothing changed. To change it, run again with another --choice."
    if status != 202:
        raise ClientError(_message(reply, f"The poll refused the answer ({status})."))
    labels = {option["position"]: option["label"] for option in ballot["options"]}
    chosen = "; ".join(labels[position] for position in choice)
    names = {int(item["id"]): item["name"] for item in ballot.get("groups", [])}
    under = (
        f" It counts under {names.get(group, group)} in the breakdown at the close, and hides among that group's"
        " members who hold the credential."
        if group is not None
        else ""
    )
    wait = int(reply.get("counted_at_batch", 0)) if isinstance(reply, dict) else 0
    closing = (
        " The poll closes before the next batch: your answer goes out with the last one whatever its size, and if"
        " few colleagues answered since the batch before, you hide among fewer than that."
        if wait and _closes(ballot) <= time.time() + wait
        else ""
    )
    return (
        f"Your answer to poll {ballot_id} ({chosen}) was sent without cookies. {counted_when(ballot, wait)} You "
        f"hide among the {ballot['credentials_issued']} colleagues who hold this poll's credential.{under}{closing} Run "
        "again with another --choice to change it until the poll closes: only your last answer counts."
    )


def counted_when(ballot: dict[str, Any], wait: int) -> str:
    """When the answer is counted, in words true for every poll: at once (no batching); otherwise with a batch,
    which goes out once enough answers wait to hide each among them; a smaller group goes after the site's longest
    wait (a poll whose results are kept until the close) or only at the close (results shown live, where a small
    batch would show its few choices to anyone reading the figures before and after)."""
    if wait == 0:
        return "It is counted already."
    minutes = wait // 60 or 1
    if ballot.get("results_live"):
        return (
            f"It is counted with a batch (every {minutes} min) once enough colleagues have answered to hide it "
            "among, or at the close: the results show live, so a smaller batch would show your choice."
        )
    return (
        f"It is counted with the next batch (within {minutes} min) if enough colleagues answer meanwhile, "
        "otherwise after the site's longest wait or at the close, whichever comes first."
    )


def send_queued(connection: Connection, wallet: Wallet, item: dict[str, Any], keys: KeyRequirement) -> tuple[str, str]:
    """`client send` for a queued answer: the line for the person and the outcome ("sent", "refused", "kept")."""
    what = f"your answer to poll {item['ballot_id']} ({item['base_url']})"
    try:
        ballot = read_ballot(connection, int(item["ballot_id"]))
        _require_open(ballot)
        check_choice(ballot, list(item["choice"]))
        check_group(ballot, item.get("group"))
    except ClientError as error:
        return f"Dropped {what}: {error}", "refused"
    try:
        line = send(
            connection,
            wallet,
            base_url=item["base_url"],
            email=item["email"],
            ballot=ballot,
            choice=list(item["choice"]),
            keys=keys,
            group=item.get("group"),
        )
    except ExchangeWaiting as waiting:
        # Kept in the queue, due again after the batch: `client send` then completes the exchange and answers.
        item["due"] = _come_back_at(client_module.clock(), waiting.wait, item, ballot)
        line = (
            f"Not sent yet: {what} waits for the exchange of your signer credential, which the server writes with "
            "its next batch so that its moment does not say who you are. The exchange is kept in this wallet: "
            f"`undersigned client send` completes it and sends your answer {when(item['due'], client_module.clock())} "
            "(or run `client answer` again then)."
        )
        return line, "waiting"
    return line, "sent"


def _come_back_at(now: float, wait: int, item: dict[str, Any], ballot: dict[str, Any]) -> float:
    """When to send a still-waiting exchange again, as the browser wallet does: twice as late each time it still
    waits (fewer than k exchanges and answers came meanwhile), up to twelve batches, so a few tries an hour stay
    under the server's limit per signer credential; but within the close's last batches, so the answer still
    reaches the poll before it closes."""
    tries = int(item.get("exchange_tries", 0))
    item["exchange_tries"] = tries + 1
    wait = max(1, wait)
    due = now + wait * min(2**tries, 12) + 1
    latest = _closes(ballot) - 1.5 * wait
    return max(now + wait + 1, min(due, latest))


# The queued kinds of action this module sends, for `client send` (app/clients/anonymous.py's send_due).
SENDERS: dict[str, Sender] = {"answer": send_queued}
