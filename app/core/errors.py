"""One domain error hierarchy: what services raise. The handlers that answer them are in app/core/error_handlers.py,
so raising an error loads no templates."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.core.i18n import N_


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    title = N_("Something is wrong with that request")

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers = headers

    @property
    def summary(self) -> str:
        """The field messages in one line, or the general message: for a flash or a terminal."""
        return "; ".join(self.fields.values()) or self.message


class InvalidInput(AppError):
    status_code = 422
    code = "invalid_input"
    title = N_("Please check what you entered")


class SignInRequired(AppError):
    status_code = 401
    code = "sign_in_required"
    title = N_("Please sign in")


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    title = N_("You cannot do that")


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    title = N_("We could not find that page")


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    title = N_("That has already happened")


class Gone(AppError):
    status_code = 410
    code = "gone"
    title = N_("That link or code has expired")


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    title = N_("That is too much to send at once")


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    title = N_("Too many attempts")


class Unavailable(AppError):
    status_code = 503
    code = "unavailable"
    title = N_("Undersigned is briefly unavailable")


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"], description="Stable, for programs: sign_in_required, conflict...")
    message: str = Field(description="For people: what went wrong and what to do.")
    fields: dict[str, str] = Field(description="A message for each field that is wrong (nested ones dotted).")


class ErrorBody(BaseModel):
    """The one shape of every error the API answers (see `error_body`)."""

    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: the errors its own rules give (409, 429...), in the one error shape.

    The errors any route gives for what it declares (sign-in, roles, ids in the path, a body, CSRF) are added
    to the contract from the route table (app.core.openapi); this names the others.
    """
    return {status: {"model": ErrorBody, "description": _RULE_ERRORS[status]} for status in statuses}


_RULE_ERRORS = {
    401: "The address and password do not match.",
    403: "The credential sent is not the one that wrote this.",
    404: "Nothing with the id the body names.",
    409: "Not possible as things stand: already done, no longer open, locked, or changed meanwhile.",
    410: "The code or link has expired.",
    429: "Too many attempts: try again after Retry-After seconds.",
}
