"""Each ballot's blind-signing key (RFC 9474): its signer while it lives, its erasure once the ballot closed and its
last batch is past, and the jobs round's checkpoints for counters that moved. Callers reach these through
app/ballots/service.py."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import log as ballot_log
from app.core import blindrsa
from app.core.runtime import Runtime
from app.models.ballots import Ballot


class _SignerCache:
    """Unsealing and parsing a ballot's key costs about a millisecond; issuance signs with it often."""

    def __init__(self) -> None:
        self._signers: dict[str, blindrsa.Signer] = {}
        self._lock = threading.Lock()

    def get(self, ballot: Ballot, rt: Runtime) -> blindrsa.Signer:
        if ballot.sealed_private is None:
            self.forget(ballot.key_id)
            raise LookupError("the ballot's key was destroyed")
        signer = self._signers.get(ballot.key_id)
        if signer is None:
            pem = rt.sealer.open(ballot.sealed_private, context=ballot.sealing_context).encode()
            signer = blindrsa.Signer(blindrsa.PrivateKey.from_pem(pem, sealed_by_us=True), pem=pem)
            with self._lock:
                self._signers[ballot.key_id] = signer
        return signer

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._signers.pop(key_id, None)


_signers = _SignerCache()


def signer_for(*, rt: Runtime, ballot: Ballot) -> blindrsa.Signer:
    """The ballot's blind signer, while its key lives (LookupError once destroyed)."""
    return _signers.get(ballot, rt)


def public_key(ballot: Ballot) -> blindrsa.PublicKey:
    return blindrsa.PublicKey.from_spki(ballot.spki)


def refresh_checkpoints(*, db: Session, rt: Runtime) -> int:
    """A new checkpoint for each ballot whose key still lives and whose counters moved since its latest one (the
    credentials issued move between batches): the jobs round, never a request, so no checkpoint dates one."""
    live = db.scalars(select(Ballot).where(Ballot.sealed_private.is_not(None)).order_by(Ballot.id))
    return sum(ballot_log.refresh_checkpoint(db, rt, ballot) for ballot in live)


def destroy_closed_keys(*, db: Session, rt: Runtime) -> int:
    """Erase the private keys of ballots closed (and past their last batch): from then on nobody, operators
    included, can make a credential for them. The public half and the counts stay published."""
    cutoff = rt.clock.now() - timedelta(seconds=rt.settings.anonymous_batch_seconds)
    closed = list(db.scalars(select(Ballot).where(Ballot.sealed_private.is_not(None), Ballot.closes_at <= cutoff)))
    for ballot in closed:
        ballot.sealed_private = None
        _signers.forget(ballot.key_id)
    db.flush()
    return len(closed)
