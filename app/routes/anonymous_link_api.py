"""JSON API for linking a device: the server carries public keys, proofs and one sealed box between two devices
of one account, and keeps them in this process's memory, or in Redis when the deployment has it
(app/anonymous/linking.py). Redis out of reach is a 503 in plain words, never a 500.

Their request log lines are counted by the hour like every /api/v1/wallet route (app/core/web.py)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Response, status

from app.anonymous import linking
from app.anonymous.schemas import AnswerCreate, OfferCreate, Opened, SealedCreate, SessionRead
from app.anonymous.service import decode
from app.core.errors import InvalidInput, errors
from app.core.i18n import N_, Message
from app.core.ratelimit import store_reachable
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.routes.policy import CurrentUser

router = APIRouter(prefix="/api/v1/wallet/link", tags=["linking a device"], route_class=UnitOfWorkRoute)

STORE_DOWN = N_(
    "Linking devices is unavailable for a moment: the server cannot reach the store where it keeps "
    "linking codes. Nothing was sent or kept. Try again in a minute."
)


def _store_reachable() -> AbstractContextManager[None]:
    """Redis (the sessions' store and the rate limits') unreachable: 503, in the linking page's words."""
    return store_reachable(STORE_DOWN)


def _point(value: str, field: str) -> bytes:
    raw = decode(value, field=field)
    try:
        if len(raw) != linking.KEY_LEN or raw[0] != 4:
            raise ValueError
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={field: "Not an uncompressed P-256 public key (65 bytes)."},
        ) from None
    return raw


def _bytes(value: str, field: str, length: int) -> bytes:
    raw = decode(value, field=field)
    if len(raw) != length:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={field: Message(N_("Must be %(length)s bytes."), length=length)},
        )
    return raw


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=errors(429),
    response_model=Opened,
    summary="Device A opens a linking session (replacing any open one of the account)",
)
def open_session(body: OfferCreate, user: CurrentUser, rt: RuntimeDep) -> Opened:
    offer_key = _point(body.offer_key, "offer_key")
    offer_proof = _bytes(body.offer_proof, "offer_proof", linking.PROOF_LEN)
    code_proof = _bytes(body.code_proof, "code_proof", linking.PROOF_LEN)
    now = rt.clock.now()
    with _store_reachable():
        rt.limiter.hit(action="wallet-link-open", subject=f"account:{user.id}", rule=linking.OPEN_RULE)
        session = linking.link_sessions(rt).open(
            user.id, offer_key=offer_key, offer_proof=offer_proof, code_proof=code_proof, now=now
        )
    return Opened.of(session, now)


@router.get(
    "",
    responses=errors(404),
    response_model=SessionRead,
    response_model_exclude_none=True,
    summary="The account's open linking session: what each device needs from the other",
)
def read_session(user: CurrentUser, rt: RuntimeDep) -> SessionRead:
    now = rt.clock.now()
    with _store_reachable():
        session = linking.link_sessions(rt).get(user.id, now=now)
    return SessionRead.of(session, now)


@router.post(
    "/answer",
    responses=errors(404, 409, 429),
    response_model=Opened,
    summary="Device B answers with the code's proof and its own key",
)
def answer_session(body: AnswerCreate, user: CurrentUser, rt: RuntimeDep) -> Opened:
    code_proof = _bytes(body.code_proof, "code_proof", linking.PROOF_LEN)
    answer_key = _point(body.answer_key, "answer_key")
    answer_proof = _bytes(body.answer_proof, "answer_proof", linking.PROOF_LEN)
    now = rt.clock.now()
    with _store_reachable():
        rt.limiter.hit(action="wallet-link-answer", subject=f"account:{user.id}", rule=linking.ANSWER_RULE)
        session = linking.link_sessions(rt).answer(
            user.id, code_proof=code_proof, answer_key=answer_key, answer_proof=answer_proof, now=now
        )
    return Opened.of(session, now)


@router.post(
    "/sealed",
    responses=errors(404, 409),
    response_model=Opened,
    summary="Device A posts the wallet secret sealed to the key both devices derived",
)
def seal_session(body: SealedCreate, user: CurrentUser, rt: RuntimeDep) -> Opened:
    sealed = _bytes(body.sealed, "sealed", linking.SEALED_LEN)
    now = rt.clock.now()
    with _store_reachable():
        session = linking.link_sessions(rt).seal(user.id, sealed=sealed, now=now)
    return Opened.of(session, now)


@router.post(
    "/done",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404, 409),
    summary="Device B holds the secret: the session and everything in it are dropped",
)
def finish_session(user: CurrentUser, rt: RuntimeDep) -> Response:
    with _store_reachable():
        linking.link_sessions(rt).done(user.id, now=rt.clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, summary="Device A cancels: the code stops working at once")
def cancel_session(user: CurrentUser, rt: RuntimeDep) -> Response:
    with _store_reachable():
        linking.link_sessions(rt).cancel(user.id, now=rt.clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
