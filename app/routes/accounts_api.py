"""JSON API for accounts: the same services as the pages, cookie sessions, CSRF token in a header."""

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response

from app.accounts import schemas, service, sessions
from app.core.database import SessionDep
from app.core.errors import SignInRequired, errors
from app.core.routing import UnitOfWorkRoute, commit_now
from app.core.runtime import RuntimeDep
from app.core.types import Id, Offset
from app.core.web import rotate_csrf_seed
from app.models.accounts import Role
from app.routes.policy import Admin, CurrentAccount, OptionalUser

router = APIRouter(prefix="/api/v1", tags=["accounts"], route_class=UnitOfWorkRoute)

CHECK_INBOX = schemas.Accepted(message="If that address can be used here, an email is on its way.")


def _session_response(request: Request, rt: RuntimeDep, signed: service.SignedIn) -> JSONResponse:
    response = JSONResponse(schemas.AccountRead.of(signed.user).model_dump(mode="json"))
    sessions.set_cookie(
        response, session_id=signed.session_id, days=rt.settings.session_days, secure=rt.settings.secure_cookies
    )
    # A new CSRF seed with the new session: fetch /csrf again after signing in.
    rotate_csrf_seed(request, response, secure=rt.settings.secure_cookies)
    return response


@router.get(
    "/csrf",
    response_model=schemas.CsrfTokenRead,
    summary="Get the CSRF token to send as X-CSRF-Token with state-changing requests",
)
def csrf_token(request: Request, user: OptionalUser) -> schemas.CsrfTokenRead:
    keyring = request.app.state.keyring
    return schemas.CsrfTokenRead(csrf_token=keyring.csrf_token(request.state.csrf_seed, request.state.csrf_session))


@router.post(
    "/accounts",
    responses=errors(429),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Accepted,
    summary="Sign up with a work address; a code is emailed to confirm it",
)
def sign_up(
    request: Request, body: schemas.SignUp, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> schemas.Accepted:
    service.sign_up(db=db, rt=rt, form=body, browser=request.state.csrf_seed)
    return CHECK_INBOX


@router.post(
    "/accounts/verification-codes",
    responses=errors(429),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Accepted,
    summary="Send a new confirmation code",
)
def resend_code(
    request: Request, body: schemas.EmailForm, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> schemas.Accepted:
    service.resend_verification(db=db, rt=rt, raw_email=body.email, browser=request.state.csrf_seed)
    return CHECK_INBOX


@router.post(
    "/accounts/verify",
    responses=errors(410, 429),
    response_model=schemas.AccountRead,
    summary="Confirm an address with the emailed code; starts a session",
)
def verify(
    request: Request, body: schemas.CodeEntry, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> JSONResponse:
    return _session_response(request, rt, service.verify_by_code(db=db, rt=rt, form=body))


@router.post(
    "/sessions", responses=errors(401, 429), response_model=schemas.AccountRead, summary="Sign in with a password"
)
def sign_in(request: Request, body: schemas.SignIn, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> JSONResponse:
    try:
        signed = service.sign_in(db=db, rt=rt, form=body, browser=request.state.csrf_seed)
    except SignInRequired:
        # A refused sign-in keeps what it wrote: the owner's notice of repeated wrong passwords.
        commit_now(db)
        raise
    sessions.end(db=db, cookie=sessions.cookie(request))
    return _session_response(request, rt, signed)


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
def sign_out(request: Request, user: CurrentAccount, db: SessionDep, rt: RuntimeDep) -> Response:
    sessions.end(db=db, cookie=sessions.cookie(request))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    sessions.clear_cookie(response, secure=rt.settings.secure_cookies)
    return response


@router.post(
    "/sign-in-links",
    responses=errors(429),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Accepted,
    summary="Email a one-time sign-in link",
)
def sign_in_link(
    request: Request, body: schemas.EmailForm, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> schemas.Accepted:
    service.request_sign_in_link(db=db, rt=rt, raw_email=body.email, browser=request.state.csrf_seed)
    return CHECK_INBOX


@router.post(
    "/password-resets",
    responses=errors(429),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Accepted,
    summary="Email a password reset link",
)
def password_reset(
    request: Request, body: schemas.EmailForm, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> schemas.Accepted:
    service.request_password_reset(db=db, rt=rt, raw_email=body.email, browser=request.state.csrf_seed)
    return CHECK_INBOX


@router.get("/me", response_model=schemas.AccountRead, summary="The signed-in account")
def me(user: CurrentAccount) -> schemas.AccountRead:
    return schemas.AccountRead.of(user)


@router.get(
    "/admin/accounts", response_model=list[schemas.AccountRead], tags=["admin"], summary="List accounts (admins)"
)
def list_accounts(
    admin: Admin,
    db: SessionDep,
    q: str | None = Query(default=None, max_length=254),
    limit: int = Query(default=50, ge=1, le=200),
    offset: Offset = 0,
) -> list[schemas.AccountRead]:
    users, _total = service.list_accounts(db=db, query=q, limit=limit, offset=offset)
    return [schemas.AccountRead.of(user) for user in users]


@router.put(
    "/admin/accounts/{user_id}/roles/{role}",
    responses=errors(409),
    response_model=schemas.AccountRead,
    tags=["admin"],
    summary="Grant a role (admins)",
)
def grant_role(user_id: Id, role: Role, admin: Admin, db: SessionDep, rt: RuntimeDep) -> schemas.AccountRead:
    user = service.get_or_404(db=db, user_id=user_id)
    service.grant_role(db=db, rt=rt, actor=admin, user=user, role=role)
    return schemas.AccountRead.of(user)


@router.delete(
    "/admin/accounts/{user_id}/roles/{role}",
    responses=errors(409),
    response_model=schemas.AccountRead,
    tags=["admin"],
    summary="Revoke a role (admins)",
)
def revoke_role(user_id: Id, role: Role, admin: Admin, db: SessionDep, rt: RuntimeDep) -> schemas.AccountRead:
    user = service.get_or_404(db=db, user_id=user_id)
    service.revoke_role(db=db, rt=rt, actor=admin, user=user, role=role)
    return schemas.AccountRead.of(user)
