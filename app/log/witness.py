"""Asking a standard witness to cosign, over the C2SP tlog-witness protocol (c2sp.org/tlog-witness).

    POST <witness>/add-checkpoint
    old <size the witness last cosigned>\\n
    <base64 consistency proof hash>\\n ...        (RFC 6962 2.1.2, none when old is 0)
    \\n
    <the checkpoint, a signed note>

The witness answers 200 with its cosignature lines, or 409 (text/x.tlog.size) with the size it last cosigned:
the deployment then proves consistency from that size and asks again. The lines it returns are kept as any
witness's (`service.cosign`): only those of witnesses the deployment is configured with, checked first.

`submit_all` is the worker's round: every witness of `log_witness_urls` is asked for every public petition's newest
checkpoint it has not cosigned yet, among those made before the current hour. A cosignature line carries the
witness's time to the second and is public; a checkpoint keeps only its hour (`service.checkpoint`). Sent in the
round right after its batch, a checkpoint was dated by its witnesses to the batch, and a batch holding one anonymous
signature to that signature's arrival. Sent only once the hour it was made in has ended, what any witness's time
tells is that the checkpoint was made in an hour already over, which its own hour says anyway.

`Witness` and `serve` are the other side, for `undersigned witness --serve`: a witness for any log it is given
the key of, this deployment's or another's.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core import merkle
from app.core.clock import to_the_hour
from app.core.errors import InvalidInput
from app.core.logging import COARSE_TIME
from app.core.runtime import Runtime
from app.log import checkpoint as notes
from app.log import service, tree
from app.models.lifecycle import LISTED_STATES
from app.models.log import LogCheckpoint
from app.models.petitions import Petition

logger = logging.getLogger("undersigned.log")

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


class WitnessUnreachable(WitnessError):
    """The witness could not be reached at all: the worker asks it nothing more this round."""


def _post(url: str, body: bytes, timeout: float = 30) -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get("Content-Type", ""), error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        raise WitnessUnreachable(f"Could not reach the witness at {url}: {error}") from None


def _post_briefly(url: str, body: bytes) -> tuple[int, str, str]:
    # The worker's round also sends mail: a witness that hangs may hold it up ten seconds, not thirty.
    return _post(url, body, timeout=10)


def request_cosignature(
    *,
    sessions: sessionmaker[Session],
    rt: Runtime,
    petition_id: int,
    witness_url: str,
    post: Post = _post,
    size: int | None = None,
) -> Cosigned:
    """Send the petition's checkpoint of `size` (its latest when None) to the witness, with the consistency proof
    from the size it last cosigned, and keep its cosignatures."""
    url = witness_url.rstrip("/") + "/add-checkpoint"
    with sessions() as db:
        latest = (
            service.latest_checkpoint(db=db, petition_id=petition_id)
            if size is None
            else db.scalar(
                select(LogCheckpoint).where(LogCheckpoint.petition_id == petition_id, LogCheckpoint.size == size)
            )
        )
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
                raise WitnessError(
                    f"The witness has cosigned {old} entries of this log, more than the {size} of the "
                    "latest checkpoint: keep its cosignature, it may prove a fork."
                )
            if old == 0:
                raise WitnessError("The witness refused a first checkpoint (409 with size 0).")
            continue
        if status != 200:
            raise WitnessError(
                {
                    403: "The witness does not trust this log's key (403).",
                    404: "The witness does not know this log's origin (404): give its operator the "
                    f"log's key {service.log_verifier_key(rt, petition_id)}.",
                    409: "The witness saw a different tree of this size (409): the log may have forked.",
                    422: "The witness found the consistency proof wrong (422).",
                }.get(status, f"The witness answered {status}: {text[:200]}")
            )
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
        raise WitnessError(
            "The witness cosigned, but with no key the deployment is configured with "
            "(UNDERSIGNED_LOG_WITNESSES): nothing was kept."
        )
    return kept


# (witness address, petition) -> the checkpoint size that witness last cosigned, and the size whose failure was
# last logged (one line per checkpoint, not one per round). Kept by the process: after a restart every witness is
# asked once more for each petition, which it answers from its own state (same size, same root: cosigned again).
_cosigned: dict[tuple[str, int], int] = {}
_failed: dict[tuple[str, int], int] = {}


def submit_all(*, sessions: sessionmaker[Session], rt: Runtime, post: Post = _post_briefly) -> int:
    """Ask each witness of `log_witness_urls` to cosign every public petition's newest checkpoint made before the
    current hour that it has not cosigned yet; keep what they return. A checkpoint of this hour waits for the next
    one: the witness's time, public to the second in its line, must not date a batch (see the module's words).
    A failure is logged (to the hour, naming the petition and the witness, never a signer) and retried the next
    round; a witness that cannot be reached is left for the next round.
    Returns the number of checkpoints cosigned this round."""
    if not rt.settings.log_witness_urls:
        return 0
    this_hour = to_the_hour(rt.clock.now())
    with sessions() as db:
        newest = dict(
            db.execute(
                select(LogCheckpoint.petition_id, func.max(LogCheckpoint.size))
                .join(Petition, Petition.id == LogCheckpoint.petition_id)
                .where(
                    Petition.state.in_([state.value for state in LISTED_STATES]), LogCheckpoint.created_at < this_hour
                )
                .group_by(LogCheckpoint.petition_id)
            ).all()
        )
    cosigned = 0
    for url in rt.settings.log_witness_urls:
        for petition_id, size in sorted(newest.items()):
            if _cosigned.get((url, petition_id)) == size:
                continue
            try:
                done = request_cosignature(
                    sessions=sessions, rt=rt, petition_id=petition_id, witness_url=url, post=post, size=size
                )
            except WitnessUnreachable as error:
                _log_failure(url, petition_id, size, str(error))
                break  # asked again next round, with every petition still to cosign
            except WitnessError as error:
                _log_failure(url, petition_id, size, str(error))
                continue
            except Exception as error:  # noqa: BLE001 - one witness's odd answer must not stop the round
                _log_failure(url, petition_id, size, f"{type(error).__name__} while asking the witness")
                continue
            _cosigned[(url, petition_id)] = done.size
            _failed.pop((url, petition_id), None)
            cosigned += 1
    return cosigned


def _log_failure(url: str, petition_id: int, size: int, reason: str) -> None:
    if _failed.get((url, petition_id)) == size:
        return
    _failed[(url, petition_id)] = size
    # To the hour: the checkpoint follows a batch that may hold one anonymous signature.
    logger.warning(
        "a witness did not cosign a petition's checkpoint; asked again next round",
        extra={"witness": url, "petition": petition_id, "size": size, "reason": reason, COARSE_TIME: True},
    )


class Witness:
    """This project's witness for any log, as C2SP tlog-witness defines it: it knows each log by its origin and
    key (a signed-note verifier key), keeps the latest checkpoint it cosigned per origin in a file, checks the
    consistency proof from there, and answers with a cosignature/v1 line."""

    def __init__(
        self,
        *,
        name: str,
        key: Ed25519PrivateKey,
        logs: list[str],
        state_file: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name, self.key, self.state_file, self.clock = name, key, state_file, clock
        self.logs = dict(notes.parse_verifier_key(text) for text in logs)  # origin -> the log's public key
        self.lock = threading.Lock()

    def _state(self) -> dict[str, dict[str, object]]:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for one add-checkpoint request."""
        try:
            head, separator, note = body.decode().partition("\n\n")
            lines = head.split("\n")
            if not separator or not lines[0].startswith("old ") or len(lines) > 64:
                raise ValueError
            old_text = lines[0][4:]
            old = int(old_text)
            if old < 0 or str(old) != old_text:
                raise ValueError
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            checkpoint = notes.parse(note)[0]
        except (ValueError, UnicodeDecodeError, notes.CheckpointError):
            return 400, "text/plain", b"malformed add-checkpoint request\n"
        public = self.logs.get(checkpoint.origin)
        if public is None:
            return 404, "text/plain", b"unknown log origin\n"
        try:
            notes.verify(note, log_key=(checkpoint.origin, public))
        except notes.CheckpointError:
            return 403, "text/plain", b"no signature from the log's key verifies\n"
        if old > checkpoint.size:
            return 400, "text/plain", b"the old size is larger than the checkpoint's\n"
        with self.lock:
            state = self._state()
            known = state.get(checkpoint.origin, {"size": 0, "root": ""})
            known_size, known_root = int(known["size"]), base64.b64decode(str(known["root"]))  # type: ignore[call-overload]
            if old != known_size:
                return 409, "text/x.tlog.size", f"{known_size}\n".encode()
            if old == checkpoint.size:
                if checkpoint.root != known_root:
                    return 409, "text/plain", b"another root for the same size: the log forked\n"
            elif old == 0:
                if proof:
                    return 422, "text/plain", b"a proof from size 0 is empty\n"
            else:
                try:
                    merkle.verify_consistency(old, checkpoint.size, known_root, checkpoint.root, proof)
                except merkle.ProofError:
                    return 422, "text/plain", b"the consistency proof does not verify\n"
            state[checkpoint.origin] = {"size": checkpoint.size, "root": base64.b64encode(checkpoint.root).decode()}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
            temporary.replace(self.state_file)  # persisted before answering, as the protocol requires
        return 200, "text/plain", notes.cosign(note, self.name, self.key, int(self.clock())).encode()


def serve(witness: Witness, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server answering POST <prefix>/add-checkpoint (any prefix), for `undersigned witness --serve`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 64 * 1024))
            if not self.path.endswith("/add-checkpoint") or length > 64 * 1024:
                status, kind, answer = 404, "text/plain", b"not found\n"
            else:
                status, kind, answer = witness.add_checkpoint(body)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass  # a witness's requests come from logs, not people: nothing to keep

    return http.server.ThreadingHTTPServer((host, port), Handler)
