"""Each ballot's blind-signing key (RFC 9474): its signer while it lives, its erasure once the ballot closed and its
last batch is past, and the jobs round's checkpoints for counters that moved. Callers reach these through
app/ballots/service.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ballots import log as ballot_log
from app.core import blindrsa
from app.core.runtime import Runtime
from app.models.ballots import Ballot, BallotAudience, BallotState
from app.petitions import issuing_keys


def signer_for(*, rt: Runtime, ballot: Ballot) -> blindrsa.Signer:
    """The ballot's blind signer, while its key lives (LookupError once destroyed): the one cache of ballot signers,
    which the wallet's issuance (app/petitions/issuing_keys.py) uses too."""
    return issuing_keys.ballot_signer(ballot=ballot, rt=rt)


def public_key(ballot: Ballot) -> blindrsa.PublicKey:
    return blindrsa.PublicKey.from_spki(ballot.spki)


def refresh_checkpoints(*, db: Session, rt: Runtime) -> int:
    """A new checkpoint for each ballot whose key still lives and whose counters moved since its latest one (the
    credentials issued move between batches): the jobs round, never a request, so no checkpoint dates one.

    Not an open signers' poll: its credentials issued are its exchanges, each a signer's first answer a click after
    their signed-in page, and the jobs round runs every few seconds (outbox_poll_seconds), so a count moved here
    dated each exchange to that round for anyone polling the poll's page, and the signed-in requests of that moment
    said who (tests/test_linkage.py). Its count moves with its batches of answers (app/ballots/answers.py) and once
    it has closed, when no exchange is taken any more."""
    now = rt.clock.now()
    live = db.scalars(select(Ballot).where(Ballot.sealed_private.is_not(None)).order_by(Ballot.id))
    return sum(
        ballot_log.refresh_checkpoint(db, rt, ballot)
        for ballot in live
        if ballot.audience is not BallotAudience.signers or ballot.state_at(now) is not BallotState.open
    )


def destroy_closed_keys(*, db: Session, rt: Runtime) -> int:
    """Erase the private keys of ballots closed (and past their last batch): from then on nobody, operators
    included, can make a credential for them. The public half and the counts stay published."""
    cutoff = rt.clock.now() - timedelta(seconds=rt.settings.anonymous_batch_seconds)
    closed = list(db.scalars(select(Ballot).where(Ballot.sealed_private.is_not(None), Ballot.closes_at <= cutoff)))
    for ballot in closed:
        ballot.sealed_private = None
        issuing_keys.forget_ballot_signer(ballot.key_id)
    db.flush()
    return len(closed)
