"""JSON API for anonymous signing: published keys, the wallet's bundled issuance, cookie-less submission, and
the published entries anyone can check."""

from __future__ import annotations

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from app.anonymous import anonymity, schemas, service, wallet
from app.core.cookieless import ANONYMOUS_SUBMIT_PATH
from app.core.database import SessionDep
from app.core.errors import InvalidInput, NotFound, errors
from app.core.i18n import N_, Message
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.types import Id
from app.models.anonymous import IssuingKey
from app.models.ballots import Ballot
from app.petitions import issuing_keys
from app.routes.policy import Anyone, CurrentUser, OptionalUser, ReadablePetition

router = APIRouter(prefix="/api/v1", tags=["anonymous signing"], route_class=UnitOfWorkRoute)

# The submission route (ANONYMOUS_SUBMIT_PATH) reads no cookie, asks for no CSRF token (the request carries no
# authority to forge) and writes no log line: see app/core/web.py.


def _signing_keys(db: SessionDep, items: list[IssuingKey]) -> list[schemas.KeyRead]:
    figures = anonymity.issued_for_all(db, items)
    return [schemas.KeyRead.of(key, issued=figures[key.petition_id]) for key in items]


@router.get(
    "/anonymous/keys",
    response_model=list[schemas.KeyRead],
    summary="The signing and discussion keys of every open petition that takes anonymous participation",
    description=(
        "Also every open petition's signer key (purpose `signer`) and every open poll's key (purpose `ballot`, with "
        "`ballot_id`): a wallet refuses a key it was given that is not the one published here to everyone."
    ),
)
def open_keys(anyone: Anyone, db: SessionDep, rt: RuntimeDep) -> JSONResponse:
    content = [key.model_dump() for key in _signing_keys(db, issuing_keys.open_keys(db=db))]
    content += [
        schemas.KeyRead.of(key, wallet.Purpose.discuss).model_dump() for key in issuing_keys.open_discussion_keys(db=db)
    ]
    content += [
        schemas.KeyRead.of(key, wallet.Purpose.signer).model_dump() for key in issuing_keys.open_signer_keys(db=db)
    ]
    content += [
        schemas.KeyRead.of_ballot(ballot).model_dump()
        for ballot in wallet.open_ballots(db, rt.clock.now(), audience=None)
    ]
    return JSONResponse(content, headers={"Cache-Control": "public, max-age=60"})


def _purposes(asked: str) -> frozenset[wallet.Purpose]:
    try:
        return frozenset(wallet.Purpose(name.strip()) for name in asked.split(",") if name.strip())
    except ValueError:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"purposes": Message(N_("Purposes are among: %(known)s."), known=", ".join(wallet.Purpose))},
        ) from None


@router.get(
    "/wallet",
    response_model=schemas.WalletRead,
    summary="The credentials due to you, those issued to you for open petitions, and your wallet's check",
)
def wallet_state(
    user: CurrentUser,
    db: SessionDep,
    rt: RuntimeDep,
    purposes: str = Query(
        "sign,discuss",
        max_length=100,
        description=(
            "The purposes this wallet knows, comma-separated: `sign,discuss` (the default, what wallets before polls "
            "know) or `sign,discuss,signer,ballot`. Only those are listed, in `due` and in `issued`."
        ),
    ),
) -> schemas.WalletRead:
    known = _purposes(purposes) | wallet.PETITION_PURPOSES
    now = rt.clock.now()
    check = wallet.wallet_check(db=db, user=user)
    due = wallet.due(db=db, user=user, now=now, purposes=known)
    figures = anonymity.issued_for_all(db, [item.key for item in due if isinstance(item.key, IssuingKey)])
    return schemas.WalletRead(
        due=[
            schemas.KeyRead.of_ballot(item.key)
            if isinstance(item.key, Ballot)
            else schemas.KeyRead.of(
                item.key,
                item.purpose,
                figures.get(item.key.petition_id) if item.purpose is wallet.Purpose.sign else None,
            )
            for item in due
        ],
        issued=[schemas.IssuedRead.of(item) for item in wallet.issued_to(db=db, user=user, now=now, purposes=known)],
        wallet_check=service.encode(check) if check is not None else None,
    )


@router.post(
    "/wallet/check",
    responses={
        **errors(409, 429),
        200: {"model": schemas.WalletCheckRead, "description": "The account already had this wallet: nothing changed."},
    },
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.WalletCheckRead,
    summary="Record that your wallet exists (its check value, never its secret)",
)
def start_wallet(body: schemas.WalletCheckCreate, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> JSONResponse:
    check = service.decode(body.check, field="check")
    started = wallet.register_check(db=db, rt=rt, user=user, check=check)
    return JSONResponse(
        schemas.WalletCheckRead(wallet_check=service.encode(check)).model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED if started else status.HTTP_200_OK,
    )


@router.post(
    "/wallet/tokens",
    responses=errors(409, 429),
    response_model=schemas.IssuanceRead,
    summary="Blind-sign every credential due, all in one request",
)
def issue(body: schemas.IssuanceRequest, user: CurrentUser, db: SessionDep, rt: RuntimeDep) -> schemas.IssuanceRead:
    requests = [
        (item.purpose, item.subject, service.decode(item.blinded_message, field=f"tokens.{item.subject}"))
        for item in body.tokens
    ]
    issued = wallet.issue(db=db, rt=rt, user=user, requests=requests)
    return schemas.IssuanceRead(tokens=[schemas.IssuedRead.of(item) for item in issued])


@router.post(
    ANONYMOUS_SUBMIT_PATH.removeprefix(router.prefix),
    responses=errors(404, 409),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Accepted,
    summary="Sign anonymously with a token: send without cookies",
)
def submit(body: schemas.AnonymousSignatureCreate, anyone: Anyone, db: SessionDep, rt: RuntimeDep) -> schemas.Accepted:
    message, signature = body.decoded()
    signer_blinded = (
        service.decode(body.signer_blinded, field="signer_blinded") if body.signer_blinded is not None else None
    )
    reply = service.submit(
        db=db, rt=rt, petition_id=body.petition_id, message=message, signature=signature, signer_blinded=signer_blinded
    )
    accepted = schemas.Accepted(status="queued", publish_within_seconds=rt.settings.anonymous_batch_seconds)
    if reply is not None:
        accepted.signer_blind_signature = service.encode(reply)
    return accepted


@router.get(
    "/petitions/{petition_id}/anonymous-signatures",
    response_model=schemas.AnonymousLedger,
    summary="A petition's published anonymous signatures (tokens), its key, and tokens issued",
)
def ledger(
    petition_id: Id,
    user: OptionalUser,
    petition: ReadablePetition,
    db: SessionDep,
    rt: RuntimeDep,
    cursor: str | None = Query(None, max_length=32, pattern=r"^[0-9a-f]*$"),
    limit: int = Query(500, ge=1, le=5000),
) -> schemas.AnonymousLedger:
    key = issuing_keys.published(db=db, petition_id=petition.id)
    if key is None:
        raise NotFound(N_("This petition does not take anonymous signatures."))
    entries = service.published(db=db, petition_id=petition.id, after=cursor or None, limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    issued = anonymity.issued_for(db, key)
    return schemas.AnonymousLedger.of(
        key,
        issued=issued,
        anonymous_signatures=service.anonymous_count(db=db, petition_id=petition.id),
        entries=entries,
        next_cursor=entries[-1].id if more and entries else None,
    )


@router.get(
    "/petitions/{petition_id}/anonymity",
    response_model=schemas.AnonymityRead,
    summary="How many colleagues an anonymous signer hides among, and the minimum group size k",
)
def anonymity_set(
    petition_id: Id, user: OptionalUser, petition: ReadablePetition, db: SessionDep, rt: RuntimeDep
) -> schemas.AnonymityRead:
    return schemas.AnonymityRead.of(anonymity.for_petition(db=db, rt=rt, petition_id=petition.id))
