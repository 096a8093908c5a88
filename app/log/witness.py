"""Asking a standard witness to cosign, over the C2SP tlog-witness protocol (c2sp.org/tlog-witness).

    POST <witness>/add-checkpoint
    old <size the witness last cosigned>\\n
    <base64 consistency proof hash>\\n ...        (RFC 6962 2.1.2, none when old is 0)
    \\n
    <the checkpoint, a signed note>

The witness answers 200 with its cosignature lines, or 409 (text/x.tlog.size) with the size it last cosigned:
the deployment then proves consistency from that size and asks again. The lines it returns are kept as any
witness's (`service.cosign`): only those of witnesses the deployment is configured with, checked first.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import InvalidInput
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service, tree

# POST a body to a URL: (status, content type, text of the answer).
Post = Callable[[str, bytes], tuple[int, str, str]]


class WitnessError(Exception):
    """The witness did not cosign: said in words an operator can act on."""


@dataclass
class Cosigned:
    size: int
    witnesses: list[str]


def request_body(old_size: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old_size}\n"] + [base64.b64encode(node).decode() + "\n" for node in proof]
    return ("".join(lines) + "\n" + note).encode()


def _post(url: str, body: bytes) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get("Content-Type", ""), error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        raise WitnessError(f"Could not reach the witness at {url}: {error}") from None


def request_cosignature(*, sessions: sessionmaker[Session], rt: Runtime, petition_id: int, witness_url: str,
                        post: Post = _post) -> Cosigned:
    """Send the petition's latest checkpoint to the witness, with the consistency proof from the size it last
    cosigned, and keep its cosignatures."""
    url = witness_url.rstrip("/") + "/add-checkpoint"
    with sessions() as db:
        latest = service.latest_checkpoint(db=db, petition_id=petition_id)
        if latest is None:
            raise WitnessError(f"Petition {petition_id} has no signature log yet: nothing to cosign.")
        size, note = latest.size, latest.note
    old = 0
    for _attempt in range(2):  # the second time with the size the witness says it last cosigned
        with sessions() as db:
            proof = tree.consistency_proof(db, petition_id, old, size) if 0 < old < size else []
        status, content_type, text = post(url, request_body(old, proof, note))
        if status == 409 and content_type.split(";")[0].strip() == "text/x.tlog.size" and old == 0:
            try:
                old = int(text.strip())
            except ValueError:
                raise WitnessError("The witness answered 409 without the size it last cosigned.") from None
            if old > size:
                raise WitnessError(f"The witness has cosigned {old} entries of this log, more than the {size} of the "
                                   "latest checkpoint: keep its cosignature, it may prove a fork.")
            if old == 0:
                raise WitnessError("The witness refused a first checkpoint (409 with size 0).")
            continue
        if status != 200:
            raise WitnessError({403: "The witness does not trust this log's key (403).",
                                404: "The witness does not know this log's origin (404): give its operator the "
                                     f"log's key {service.log_verifier_key(rt, petition_id)}.",
                                409: "The witness saw a different tree of this size (409): the log may have forked.",
                                422: "The witness found the consistency proof wrong (422)."}.get(
                status, f"The witness answered {status}: {text[:200]}"))
        return Cosigned(size=size, witnesses=_keep(sessions, rt, petition_id, size, text))
    raise WitnessError("The witness kept asking for another old size.")


def _keep(sessions: sessionmaker[Session], rt: Runtime, petition_id: int, size: int, text: str) -> list[str]:
    """Keep each returned line from a witness the deployment knows; ignore the others (unknown keys)."""
    known = service.witnesses(rt)
    kept = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name = line.split(" ")[1] if line.startswith(notes.DASH + " ") and line.count(" ") == 2 else None
        if name not in known:
            continue
        try:
            with sessions.begin() as db:
                service.cosign(db=db, rt=rt, petition_id=petition_id, size=size, line=line)
        except InvalidInput as error:
            raise WitnessError(f"The witness's cosignature does not verify: {error.message}") from None
        kept.append(name)
    if not kept:
        raise WitnessError("The witness cosigned, but with no key the deployment is configured with "
                           "(UNDERSIGNED_LOG_WITNESSES): nothing was kept.")
    return kept
