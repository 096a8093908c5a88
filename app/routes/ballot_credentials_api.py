"""JSON API for the credentials of ballots among a petition's signers (issue #25): the exchange of a signer
credential for a ballot's credential, and the signer credential's reply kept for an anonymous signature.

Both are cookie-less (app/core/cookieless.py): they read no cookie, need no CSRF token and write no log line; what
they are sent names nobody, and a session beside it would.
"""

from __future__ import annotations

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.anonymous import service as anonymous
from app.ballots import exchange as ballot_exchange
from app.core import b64url
from app.core.database import SessionDep
from app.core.errors import ErrorBody, NotFound, errors
from app.core.i18n import N_, Message
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.types import Id
from app.models.petitions import Petition
from app.routes.policy import Anyone

router = APIRouter(prefix="/api/v1", tags=["ballots"], route_class=UnitOfWorkRoute)

B64, ON_INPUT = b64url.PATTERN, b64url.ON_INPUT


class ExchangeCreate(BaseModel):
    """A signer credential of the ballot's petition, and the blinded request for the ballot's credential."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=43, max_length=700, pattern=B64, description=f"The signer credential's message, {ON_INPUT}."
    )
    signature: str = Field(
        min_length=1,
        max_length=1400,
        pattern=B64,
        description=f"The signature of the petition's signer key on it, {ON_INPUT}.",
    )
    blinded: str = Field(
        min_length=1,
        max_length=1400,
        pattern=B64,
        description=f"The blinded request (RFC 9474) for the ballot's credential, under the ballot's key, {ON_INPUT}.",
    )


class BlindSignatureRead(BaseModel):
    blind_signature: str = Field(description="The blind signature (RFC 9474), base64url without padding.")


class ExchangeWaiting(BaseModel):
    """202: the exchange waits for the next batch; nothing is written or handed out yet."""

    status: str = Field(description="Always `waiting`.")
    come_back_in_seconds: int = Field(
        description="Seconds until the next batch: send the same request again then to get the reply (202 again if "
        "it still waits)."
    )
    message: str = Field(description="The same, in words.")


COME_BACK = N_(
    "Your signer credential is accepted for this poll. So that the moment you clicked does not say who you are, "
    "the poll's credential is written with the next batch, in about %(minutes)s min: send the same request again "
    "then to get it (your wallet does this for you), and your answer follows. Nothing is handed out before."
)


@router.post(
    "/ballots/{ballot_id}/exchange",
    responses={
        **errors(404, 409),
        202: {
            "model": ExchangeWaiting,
            "description": "Batching is on and the exchange is not written yet: it waits for the next batch. Send the "
            "same request again after `come_back_in_seconds`.",
        },
        400: {
            "model": ErrorBody,
            "description": "The signer credential does not verify under the petition's signer key, or the request "
            "is not one for the poll's key: nothing issued.",
        },
    },
    response_model=BlindSignatureRead,
    summary="Exchange a signer credential for a poll's credential: send without cookies",
    description=(
        "For a poll put to a petition's signers. The signer credential must verify under the petition's signer "
        "key; it is exchanged once per poll (the same request again gets the same reply; another request, 409). "
        "With batching on, the exchange is written with the next batch: until then the answer is 202 and when to "
        "come back; after it, the same request gets the reply (200)."
    ),
)
def exchange(
    ballot_id: Id, body: ExchangeCreate, anyone: Anyone, db: SessionDep, rt: RuntimeDep
) -> BlindSignatureRead | JSONResponse:
    outcome = ballot_exchange.exchange(
        db=db,
        rt=rt,
        ballot_id=ballot_id,
        message=anonymous.decode(body.message, field="message"),
        signature=anonymous.decode(body.signature, field="signature"),
        blinded=anonymous.decode(body.blinded, field="blinded"),
    )
    if outcome.reply is None:
        waiting = ExchangeWaiting(
            status="waiting",
            come_back_in_seconds=outcome.come_back_in,
            message=str(Message(COME_BACK, minutes=max(1, round(outcome.come_back_in / 60)))),
        )
        return JSONResponse(waiting.model_dump(), status_code=status.HTTP_202_ACCEPTED)
    return BlindSignatureRead(blind_signature=anonymous.encode(outcome.reply))


@router.get(
    "/petitions/{petition_id}/signer-replies/{nullifier}",
    responses=errors(404),
    response_model=BlindSignatureRead,
    status_code=status.HTTP_200_OK,
    summary="The signer credential's reply kept for an anonymous signature: fetch without cookies",
    description=(
        "`nullifier` is the SHA-256 (hex) of the signing token's message. The reply is kept once the signature is "
        "written (with its batch); it is useless without the wallet's blinding factor."
    ),
)
def signer_reply(
    petition_id: Id,
    anyone: Anyone,
    db: SessionDep,
    nullifier: str = Path(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$"),
) -> BlindSignatureRead:
    if db.get(Petition, petition_id) is None:
        raise NotFound(N_("There is no such petition."))
    reply = anonymous.signer_reply_for(db=db, petition_id=petition_id, nullifier=nullifier)
    if reply is None:
        raise NotFound(
            N_(
                "No signer credential is kept for this signature: it is kept once the signature is written (with "
                "the next batch), and only when the signature asked for one."
            )
        )
    return BlindSignatureRead(blind_signature=anonymous.encode(reply))
