"""A signer credential exchanged for a ballot's credential (issue #25): how a petition's signers, named and anonymous
alike, answer a ballot among them without saying which signature is theirs.

The wallet holds the petition's signer credential (blind-signed under its SignerKey: by the bundle for a named
signer, at signing for an anonymous one) and sends it, without cookies, with a blinded request for the ballot's
credential. The server checks it under the petition's signer key, blind-signs the request under the ballot's key,
and records only that this signer credential was exchanged for this ballot (BallotExchange: a tag derived from it,
and the reply), so it is never exchanged twice. The public count of credentials issued is not moved by the
exchange: the ballot's next checkpoint (its batch, or the jobs round) sets it from the exchange rows. Both signatures are blind: the server cannot tie the signer
credential to a signature or an account, nor the ballot credential it signed to the answer that later spends it.

The tag names the ballot as well as the credential: the exchanges of one signer for two ballots of a petition
carry unrelated tags, so a copy of the database cannot tell that the same person took part in both.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy.orm import Session

from app.ballots import limits, service
from app.core import blindrsa
from app.core.database import insert_for, table_of
from app.core.errors import AppError, Conflict, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.anonymous import SignerKey
from app.models.ballots import Ballot, BallotAudience, BallotExchange, BallotState

TAG_PREFIX = b"undersigned/signer-tag/v1"
MESSAGE_MIN, MESSAGE_MAX = 32, 512
FIELDS_ERROR = N_("Please correct the highlighted fields.")
# Why a poll not put to a petition's signers takes no signer credential, in the words of its audience: the route is
# cookie-less, so the same words go to a member of its audience and to anyone else.
NOT_EXCHANGED = {
    BallotAudience.members: N_(
        "This poll is put to every member, not to a petition's signers: its credential comes with your wallet's "
        "other credentials, not in exchange for a signer credential."
    ),
    BallotAudience.groups: N_(
        "This poll is put to the members of chosen departments or locations, not to a petition's signers: its "
        "credential comes with your wallet's other credentials when your account gives one of them, not in "
        "exchange for a signer credential."
    ),
}


class Refused(AppError):
    """A signer credential or request that cannot be exchanged (400): nothing is issued or written."""

    status_code = 400
    code = "bad_credential"
    title = N_("That credential cannot be exchanged")


def signer_tag(ballot_id: int, message: bytes) -> str:
    """SHA-256 (hex) of the prefix, the ballot's id and the signer credential's message."""
    return hashlib.sha256(TAG_PREFIX + f"/{ballot_id}/".encode() + message).hexdigest()


def _replies_to(public: blindrsa.PublicKey, reply: bytes, blinded: bytes) -> bool:
    """Whether `reply` is the blind signature of `blinded` (reply^e mod n == blinded): the server keeps only the
    reply, and this tells a retry of the same request from a second request with the same credential."""
    value = pow(int.from_bytes(reply, "big"), public.e, public.n)
    return hmac.compare_digest(value.to_bytes(public.modulus_len, "big"), blinded.rjust(public.modulus_len, b"\0"))


def exchange(*, db: Session, rt: Runtime, ballot_id: int, message: bytes, signature: bytes, blinded: bytes) -> bytes:
    """The ballot credential's blind signature for `blinded`, in exchange for a signer credential of the ballot's
    petition (message, signature). The same credential sent again with the same request gets the same reply (a
    wallet that lost the answer); with another request, a refusal: one credential per signer and ballot."""
    ballot = db.get(Ballot, ballot_id)
    if ballot is None:
        raise NotFound(N_("There is no such poll."))
    if ballot.audience is not BallotAudience.signers:
        raise Conflict(NOT_EXCHANGED[ballot.audience])
    state = service.state(ballot, rt.clock.now())
    if state is BallotState.scheduled:
        raise Conflict(N_("This poll is not open yet: its credentials are handed out once it opens."))
    if state is BallotState.closed or ballot.sealed_private is None:
        raise Conflict(N_("This poll has closed: it takes no more answers, and no more credentials are handed out."))
    if not MESSAGE_MIN <= len(message) <= MESSAGE_MAX:
        raise Refused(
            FIELDS_ERROR,
            fields={
                "message": Message(
                    N_("A credential's message is %(min)s to %(max)s bytes."), min=MESSAGE_MIN, max=MESSAGE_MAX
                )
            },
        )
    # A signers' poll always has its petition (service.create refuses one without); None finds no key either.
    key = db.get(SignerKey, ballot.petition_id) if ballot.petition_id is not None else None
    if key is None:
        raise Conflict(N_("This poll's petition hands out no signer credentials, so its signers cannot answer it."))
    try:
        blindrsa.verify(blindrsa.PublicKey.from_spki(key.spki), message, signature)
    except blindrsa.BlindSignatureError:
        raise Refused(
            N_(
                "This signer credential is not valid for this poll's petition: it was not issued by the key of the "
                "petition's signers. (A signing token, a discussion credential or another petition's signer "
                "credential is not one.)"
            ),
            fields={"signature": N_("Does not verify under the key of this petition's signers.")},
        ) from None
    # Counted once the signer credential verifies, before anything is signed or written (app/ballots/limits.py).
    limits.hit(rt, action=limits.EXCHANGE, ballot_id=ballot.id, credential=signer_tag(ballot.id, message))
    public = service.public_key(ballot)
    if not 0 < len(blinded) <= public.modulus_len or int.from_bytes(blinded, "big") >= public.n:
        raise Refused(FIELDS_ERROR, fields={"blinded": N_("Not a blinded request for this poll's key.")})
    tag = signer_tag(ballot.id, message)
    kept = db.get(BallotExchange, (ballot.id, tag))
    if kept is not None:
        return _same_request(public, kept.blind_signature, blinded)
    try:
        reply = service.signer_for(rt=rt, ballot=ballot).blind_sign(blinded)
    except blindrsa.BlindSignatureError as error:
        raise Refused(FIELDS_ERROR, fields={"blinded": str(error)}) from None
    except LookupError:  # destroyed by the closing job a moment ago
        raise Conflict(
            N_("This poll has closed: it takes no more answers, and no more credentials are handed out.")
        ) from None
    table = table_of(BallotExchange)
    inserted = db.execute(
        insert_for(db.get_bind().dialect.name, table)
        .values(ballot_id=ballot.id, signer_tag=tag, blind_signature=reply)
        .on_conflict_do_nothing()
        .returning(table.c.signer_tag)
    ).scalar_one_or_none()
    if inserted is None:  # the same credential, exchanged at the same moment by another request
        db.expire_all()
        raced = db.get(BallotExchange, (ballot.id, tag))
        assert raced is not None
        return _same_request(public, raced.blind_signature, blinded)
    # No counter moves here: credentials_issued is public ("hidden among N") and an exchange is a signer's first
    # answer, so it moving now would date that answer to the second. The ballot's next checkpoint (a batch, or the
    # jobs round) counts the exchange rows (app/ballots/log.py, sync_issued).
    return reply


def _same_request(public: blindrsa.PublicKey, reply: bytes, blinded: bytes) -> bytes:
    if _replies_to(public, reply, blinded):
        return reply
    raise Conflict(
        N_(
            "This signer credential was already exchanged for this poll's credential, with another request: "
            "each signer gets one. Your wallet holds the credential it was given; answer (or change your answer) "
            "with it."
        ),
        fields={"message": N_("Already exchanged for this poll.")},
    )
