"""Making ballots and their credentials in tests, as the wallet does (blind, have the ballot's key sign, finalize),
without the wallet's bundle."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy.orm import Session

from app.ballots import service as ballots
from app.core import blindrsa
from app.core.runtime import Runtime
from app.models.accounts import Role, User
from app.models.ballots import Ballot, BallotAudience, BallotKind
from app.models.petitions import Petition
from tests import factories


def credential(db: Session, rt: Runtime, ballot: Ballot) -> tuple[bytes, bytes]:
    """A credential for the ballot, finalized as a wallet does; counted as issued, as issuance counts it."""
    public = blindrsa.PublicKey.from_spki(ballot.spki)
    message = blindrsa.prepare(secrets.token_bytes(32))
    blinded = blindrsa.blind(public, message)
    reply = ballots.signer_for(rt=rt, ballot=ballot).blind_sign(blinded.blinded_msg)
    ballot.credentials_issued += 1
    db.flush()
    return message, blindrsa.finalize(public, message, reply, blinded.inv)


def pulse_author(db: Session) -> User:
    return factories.worker(db, roles=(Role.responder,))


def pulse_ballot(
    db: Session,
    rt: Runtime,
    *,
    kind: BallotKind = BallotKind.single,
    options: list[str] | None = None,
    author: User | None = None,
    days: int = 7,
    **changes: object,
) -> Ballot:
    values: dict[str, object] = {
        "actor": author or pulse_author(db),
        "petition": None,
        "kind": kind,
        "question": "Should the office open at eight?",
        "options": ["Yes", "No", "Later"] if options is None and kind is not BallotKind.scale else (options or []),
        "max_choices": None,
        "audience": BallotAudience.members,
        "opens_at": None,
        "closes_at": rt.clock.now() + timedelta(days=days),
        "min_answers": None,
    }
    values.update(changes)
    ballot = ballots.create(db, rt, **values)  # type: ignore[arg-type]
    db.commit()
    return ballot


def petition_ballot(db: Session, rt: Runtime, petition: Petition, organizer: User, **changes: object) -> Ballot:
    changes.setdefault("audience", BallotAudience.signers)
    return pulse_ballot(db, rt, author=organizer, petition=petition, **changes)  # type: ignore[arg-type]
