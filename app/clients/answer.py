"""`undersigned client answer URL --choice N`: answer a poll from the command-line wallet (issue #25).

The poll's credential comes the way the browser gets it: for a poll put to every member, in the wallet's one bundle
(`collect` with every purpose: asking for one poll's credential alone would say which poll the worker means to
answer); for a poll put to a petition's signers, in exchange for the petition's signer credential (collected in the
bundle by a named signer), sent without cookies. The answer goes without cookies too, and can be sent again with
another choice until the poll closes: only the last counts. The credential derives from the wallet secret, so any
device of the wallet answers with the same one, and changing the answer from another device replaces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.anonymous import derive
from app.clients.anonymous import (
    ALL_PURPOSES,
    ClientError,
    Connection,
    KeyRequirement,
    Session,
    Wallet,
    _message,
    fetch_signer_reply,
    held,
    wallet_secret,
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
        raise ClientError(
            f"This poll is put to the signers of petition {petition_id}, and this wallet holds no signer credential "
            "for it. A signer with a name collects one with the wallet (run this command again once your "
            "signature is in); an anonymous signer received one with the signature, on the device that signed."
        )
    secret = wallet_secret(wallet, base_url, email)
    if secret is None:
        raise ClientError("This wallet holds no secret for your account: `undersigned client collect` first.")
    key = ballot["key"]
    keys.require(petition_id=ballot_id, purpose="ballot", key_id=key["key_id"], spki=key["spki"])
    public = blindrsa.PublicKey.from_spki(_b64d(key["spki"]))
    credential = derive.credential(secret, purpose="ballot", ballot_id=ballot_id, key_id=key["key_id"], public=public)
    status, answer = connection.anonymous(
        "POST",
        f"/api/v1/ballots/{ballot_id}/exchange",
        {"message": signer["message"], "signature": signer["signature"], "blinded": _b64e(credential.blinded_msg)},
    )
    if status != 200:
        raise ClientError(_message(answer, "The server did not exchange your signer credential."))
    signature = credential.finalize(public, _b64d(answer["blind_signature"]))
    slot = f"{base_url}|{email.lower()}|{ballot_id}|ballot"
    wallet["credentials"][slot] = {
        "petition_id": petition_id,
        "ballot_id": ballot_id,
        "purpose": "ballot",
        "key_id": key["key_id"],
        "spki": key["spki"],
        "message": _b64e(credential.message),
        "signature": _b64e(signature),
        "status": "held",
        "derived": True,
    }
    return wallet["credentials"][slot]


def answer(
    *,
    session: Session,
    wallet: Wallet,
    target: BallotTarget,
    choice: list[int],
    keys: KeyRequirement,
    save: Any = lambda: None,
) -> str:
    """Collect what the poll needs, then send the answer without cookies. Returns what happened, in words."""
    bare = Connection(target.base_url)  # no jar: this side could not send a cookie if it tried
    ballot = read_ballot(bare, target.ballot_id)
    if ballot["state"] != "open":
        raise ClientError(
            "This poll has closed: answers are no longer taken."
            if ballot["state"] == "closed"
            else "This poll is not open yet: try again once it opens."
        )
    check_choice(ballot, choice)
    email = session.email
    credential = held(wallet, target.base_url, email, target.ballot_id, "ballot")
    if credential is None or credential.get("status") != "held":
        # Everything due, all at once: the poll's credential (members) or the signer credential (named signers).
        collect_credentials(session, wallet, keys=keys, save=save, purposes=ALL_PURPOSES)
        credential = held(wallet, target.base_url, email, target.ballot_id, "ballot")
    if (credential is None or credential.get("status") != "held") and ballot["audience"] == "signers":
        credential = _ballot_credential(
            wallet, base_url=target.base_url, email=email, ballot=ballot, connection=bare, keys=keys
        )
        save()
    if credential is None or credential.get("status") != "held":
        raise ClientError(
            "This wallet holds no credential for this poll, and none is due to your account: it may be put to "
            "another group, or your credential was collected by a device whose wallet this file does not hold."
        )
    key = ballot["key"]
    if credential["key_id"] != key["key_id"]:
        raise ClientError("The poll's key is not the one your credential is under: nothing was sent.")
    keys.require(petition_id=target.ballot_id, purpose="ballot", key_id=key["key_id"], spki=key["spki"])
    status, reply = bare.anonymous(
        "POST",
        f"/api/v1/ballots/{target.ballot_id}/answers",
        {"message": credential["message"], "signature": credential["signature"], "choice": choice},
    )
    if status == 409 and "already counted" in _message(reply, ""):
        return "This answer is already counted: nothing changed. To change it, run again with another --choice."
    if status != 202:
        raise ClientError(_message(reply, f"The poll refused the answer ({status})."))
    labels = {option["position"]: option["label"] for option in ballot["options"]}
    chosen = "; ".join(labels[position] for position in choice)
    wait = int(reply.get("counted_at_batch", 0)) if isinstance(reply, dict) else 0
    when = (
        "It is counted already." if wait == 0 else f"It is counted with the next batch (within {wait // 60 or 1} min)."
    )
    return (
        f"Your answer to poll {target.ballot_id} ({chosen}) was sent without cookies. {when} You hide among the "
        f"{ballot['credentials_issued']} colleagues who hold this poll's credential. Run again with another "
        "--choice to change it until the poll closes: only your last answer counts."
    )
