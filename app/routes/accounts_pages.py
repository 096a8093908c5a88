"""Account pages: sign-up, verification, sign-in (password or emailed link), reset, sign-out, settings."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from app.accounts import schemas, service, sessions
from app.ballots import audiences
from app.core.database import SessionDep
from app.core.errors import AppError, SignInRequired
from app.core.forms import validate
from app.core.i18n import N_
from app.core.pages import FormFields, form_error, safe_next
from app.core.routing import UnitOfWorkRoute, commit_now
from app.core.runtime import Runtime, RuntimeDep
from app.core.templating import redirect, render
from app.core.web import rotate_csrf_seed
from app.mail import unsubscribe
from app.models.accounts import CodePurpose, User
from app.models.mail_kinds import KIND_LABELS
from app.models.signatures import GroupKind
from app.organization import service as organization
from app.petitions import mail_preferences
from app.routes.policy import CurrentAccount, CurrentUser, OptionalUser
from app.signatures import groups

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

PENDING_COOKIE = "undersigned_pending"
CHECK_INBOX = N_(
    "If that address can be used here, an email is on its way. It can take a minute; check your spam folder too."
)


SIGN_IN_LINK_FORM = {
    "heading": N_("Sign in with an emailed link"),
    "action": "/signin/link",
    "button": N_("Email me a sign-in link"),
    "explanation": N_("No password needed: we email you a link that signs you in on this device."),
}
PASSWORD_RESET_FORM = {
    "heading": N_("Reset your password"),
    "action": "/password/forgot",
    "button": N_("Email me a reset link"),
    "explanation": N_("We email you a link to choose a new password."),
}


def _pending_serializer(rt: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(rt.keyring.key("pending-email").hex(), salt="pending")


def _pending(request: Request, rt: Runtime) -> tuple[str, str]:
    """The address waiting for its code, and the page the person came from (a same-site path, or "/")."""
    raw = request.cookies.get(PENDING_COOKIE)
    if not raw:
        return "", "/"
    try:
        value = _pending_serializer(rt).loads(raw, max_age=3600)
    except BadSignature:
        return "", "/"
    if isinstance(value, list) and len(value) == 2:
        return str(value[0]), safe_next(str(value[1]))
    return str(value), "/"


def _pending_email(request: Request, rt: Runtime) -> str:
    return _pending(request, rt)[0]


def _signed_in(request: Request, rt: Runtime, signed: service.SignedIn, target: str, message: str) -> Response:
    response = redirect(request, safe_next(target), message)
    sessions.set_cookie(
        response, session_id=signed.session_id, days=rt.settings.session_days, secure=rt.settings.secure_cookies
    )
    response.delete_cookie(PENDING_COOKIE)
    rotate_csrf_seed(request, response, secure=rt.settings.secure_cookies)
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, next: str = "/") -> Response:
    if user is not None:
        return redirect(request, safe_next(next), N_("You are already signed in."), "info")
    return render(
        request,
        "accounts/signup.html",
        {"domains": organization.current(db=db, rt=rt).allowed_email_domains, "next": safe_next(next)},
    )


@router.post("/signup", response_class=HTMLResponse)
def signup(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    # Someone who came from a petition's link lands back on it once confirmed: only a same-site path is kept.
    target = safe_next(fields.get("next"))
    try:
        form = validate(schemas.SignUp, fields, checks=service.sign_up_checks(db=db, rt=rt))
        service.sign_up(db=db, rt=rt, form=form, browser=request.state.csrf_seed)
    except AppError as error:
        return form_error(
            request,
            "accounts/signup.html",
            error,
            fields,
            {"domains": organization.current(db=db, rt=rt).allowed_email_domains, "next": target},
        )
    response = redirect(
        request, "/verify", N_("Check your inbox: we sent you a six-digit code to confirm your address.")
    )
    response.set_cookie(
        PENDING_COOKIE,
        _pending_serializer(rt).dumps([form.email.lower(), target]),
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=rt.settings.secure_cookies,
    )
    return response


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, user: OptionalUser, rt: RuntimeDep) -> Response:
    email = _pending_email(request, rt) or (user.email if user else "")
    return render(request, "accounts/verify.html", {"values": {"email": email}})


@router.post("/verify", response_class=HTMLResponse)
def verify(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    try:
        signed = service.verify_by_code(db=db, rt=rt, form=validate(schemas.CodeEntry, fields))
    except AppError as error:
        return form_error(request, "accounts/verify.html", error, fields)
    return _signed_in(
        request,
        rt,
        signed,
        _pending(request, rt)[1],
        f"Your address is confirmed. Welcome, {signed.user.display_name}!",
    )


@router.post("/verify/resend", response_class=HTMLResponse)
def resend_code(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    try:
        form = validate(schemas.EmailForm, fields)
        service.resend_verification(db=db, rt=rt, raw_email=form.email, browser=request.state.csrf_seed)
    except AppError as error:
        return form_error(request, "accounts/verify.html", error, fields)
    return redirect(request, "/verify", CHECK_INBOX, "info")


@router.get("/verify/link/{token}", response_class=HTMLResponse)
def verify_link_page(request: Request, token: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    # Mail scanners open every link: this page only shows a button; the POST confirms.
    service.code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.verify_email)
    return render(
        request,
        "accounts/confirm_link.html",
        {
            "heading": N_("Confirm your address"),
            "button": N_("Confirm my address"),
            "action": f"/verify/link/{token}",
            "explanation": N_(
                "Press the button to confirm that this address is yours and finish creating your account."
            ),
        },
    )


@router.post("/verify/link/{token}", response_class=HTMLResponse)
def verify_link(request: Request, token: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    signed = service.verify_by_link(db=db, rt=rt, token=token)
    # Opened in the browser that signed up, the link also returns to the page the person came from.
    return _signed_in(
        request,
        rt,
        signed,
        _pending(request, rt)[1],
        f"Your address is confirmed. Welcome, {signed.user.display_name}!",
    )


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, user: OptionalUser, next: str = "/") -> Response:
    if user is not None:
        return redirect(request, safe_next(next), "You are already signed in.", "info")
    return render(request, "accounts/signin.html", {"next": safe_next(next)})


@router.post("/signin", response_class=HTMLResponse)
def signin(request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    target = safe_next(fields.get("next"))
    try:
        signed = service.sign_in(db=db, rt=rt, form=validate(schemas.SignIn, fields), browser=request.state.csrf_seed)
    except SignInRequired as error:
        # A wrong password writes one thing to keep: the owner's notice when wrong passwords pile up.
        commit_now(db)
        return form_error(request, "accounts/signin.html", error, fields, {"next": target})
    except AppError as error:
        return form_error(request, "accounts/signin.html", error, fields, {"next": target})
    # A session that existed before sign-in is ended: the new one gets a fresh id.
    sessions.end(db=db, cookie=sessions.cookie(request))
    return _signed_in(request, rt, signed, target, f"Signed in. Welcome back, {signed.user.display_name}.")


@router.get("/signin/link", response_class=HTMLResponse)
def signin_link_page(request: Request, user: OptionalUser) -> Response:
    return render(request, "accounts/email_request.html", SIGN_IN_LINK_FORM)


@router.post("/signin/link", response_class=HTMLResponse)
def request_signin_link(
    request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    try:
        form = validate(schemas.EmailForm, fields)
        service.request_sign_in_link(db=db, rt=rt, raw_email=form.email, browser=request.state.csrf_seed)
    except AppError as error:
        return form_error(request, "accounts/email_request.html", error, fields, SIGN_IN_LINK_FORM)
    return redirect(request, "/signin", CHECK_INBOX, "info")


@router.get("/signin/link/{token}", response_class=HTMLResponse)
def signin_link_confirm_page(
    request: Request, token: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep
) -> Response:
    service.code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.sign_in)
    return render(
        request,
        "accounts/confirm_link.html",
        {
            "heading": N_("Sign in"),
            "button": N_("Sign me in"),
            "action": f"/signin/link/{token}",
            "explanation": N_("Press the button to sign in on this device."),
        },
    )


@router.post("/signin/link/{token}", response_class=HTMLResponse)
def signin_with_link(request: Request, token: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    signed = service.sign_in_by_link(db=db, rt=rt, token=token)
    sessions.end(db=db, cookie=sessions.cookie(request))
    return _signed_in(request, rt, signed, "/", f"Signed in. Welcome back, {signed.user.display_name}.")


@router.get("/password/forgot", response_class=HTMLResponse)
def forgot_password_page(request: Request, user: OptionalUser) -> Response:
    return render(request, "accounts/email_request.html", PASSWORD_RESET_FORM)


@router.post("/password/forgot", response_class=HTMLResponse)
def forgot_password(
    request: Request, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    try:
        form = validate(schemas.EmailForm, fields)
        service.request_password_reset(db=db, rt=rt, raw_email=form.email, browser=request.state.csrf_seed)
    except AppError as error:
        return form_error(request, "accounts/email_request.html", error, fields, PASSWORD_RESET_FORM)
    return redirect(request, "/signin", CHECK_INBOX, "info")


@router.get("/password/reset/{token}", response_class=HTMLResponse)
def reset_password_page(request: Request, token: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep) -> Response:
    service.code_by_link(db=db, rt=rt, token=token, purpose=CodePurpose.reset_password)
    return render(request, "accounts/reset_password.html", {"action": f"/password/reset/{token}"})


@router.post("/password/reset/{token}", response_class=HTMLResponse)
def reset_password(
    request: Request, token: str, user: OptionalUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    try:
        signed = service.reset_password(db=db, rt=rt, token=token, form=validate(schemas.NewPassword, fields))
    except AppError as error:
        if error.status_code in (404, 410):
            raise
        return form_error(
            request, "accounts/reset_password.html", error, fields, {"action": f"/password/reset/{token}"}
        )
    return _signed_in(request, rt, signed, "/", "Your password is changed. Other devices have been signed out.")


@router.post("/signout", response_class=HTMLResponse)
def signout(request: Request, user: CurrentAccount, db: SessionDep, rt: RuntimeDep) -> Response:
    sessions.end(db=db, cookie=sessions.cookie(request))
    response = redirect(request, "/", N_("You are signed out."))
    sessions.clear_cookie(response, secure=rt.settings.secure_cookies)
    return response


@router.post("/signout/everywhere", response_class=HTMLResponse)
def signout_everywhere(request: Request, user: CurrentAccount, db: SessionDep, rt: RuntimeDep) -> Response:
    sessions.end_all(db=db, user=user)
    response = redirect(request, "/", N_("You are signed out on every device."))
    sessions.clear_cookie(response, secure=rt.settings.secure_cookies)
    return response


def _account_context(db: Session, user: User) -> dict[str, object]:
    """What the account page lists besides its forms: the petitions the person's mail is about, and the lists of
    departments and locations the member may give for polls put to them."""
    return {
        "petition_mail": mail_preferences.account_petitions(db=db, user=user),
        "poll_mail": not unsubscribe.polls_turned_off(db=db, user_ids=[user.id]),
        "kind_labels": KIND_LABELS,
        "departments": groups.listing(db=db, kind=GroupKind.department),
        "locations": groups.listing(db=db, kind=GroupKind.location),
    }


def _account_values(db: Session, user: User) -> dict[str, str]:
    given = audiences.member_groups(db=db, user=user)
    return {
        "notification_email": user.notification_email or "",
        **{kind.value: str(group.id) for kind, group in given.items()},
    }


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    return render(request, "accounts/account.html", {"values": _account_values(db, user), **_account_context(db, user)})


@router.post("/account/poll-groups", response_class=HTMLResponse)
def set_poll_groups(request: Request, user: CurrentUser, db: SessionDep, fields: FormFields) -> Response:
    """The member's department and location, for polls put to departments or locations (app/ballots/audiences.py)."""
    try:
        audiences.set_member_groups(
            db=db, user=user, department=fields.get("department"), location=fields.get("location")
        )
    except AppError as error:
        return form_error(request, "accounts/account.html", error, fields, _account_context(db, user))
    return redirect(
        request, "/account", N_("Saved. Polls put to your department or location are offered to you from now on.")
    )


@router.post("/account/notification-email", response_class=HTMLResponse)
def set_notification_email(
    request: Request, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    try:
        service.set_notification_email(db=db, rt=rt, user=user, form=validate(schemas.NotificationEmail, fields))
    except AppError as error:
        return form_error(request, "accounts/account.html", error, fields, _account_context(db, user))
    return redirect(
        request, "/account", N_("We sent a code to your personal address. Enter it below to start using it.")
    )


@router.post("/account/notification-email/verify", response_class=HTMLResponse)
def verify_notification_email(
    request: Request, user: CurrentUser, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    try:
        service.require_pending_notification_email(user)  # before the code: without one waiting, no box asks for it
        service.verify_notification_email(db=db, rt=rt, user=user, form=validate(schemas.NotificationCode, fields))
    except AppError as error:
        return form_error(
            request,
            "accounts/account.html",
            error,
            fields,
            {"values": {"notification_email": user.notification_email or ""}, **_account_context(db, user)},
        )
    return redirect(request, "/account", N_("Your personal address is confirmed; notifications go there from now on."))


@router.post("/account/notification-email/remove", response_class=HTMLResponse)
def remove_notification_email(request: Request, user: CurrentUser) -> Response:
    service.remove_notification_email(user=user)
    return redirect(request, "/account", N_("Notifications go to your work address again."))
