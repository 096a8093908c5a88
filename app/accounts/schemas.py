"""What the account surfaces accept and return (pages and the JSON API share these)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models.accounts import Role, User

EMAIL_MAX = 254


ONE_LINE_MESSAGE = "Use one line of text: no line breaks, tabs or other control characters."


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def is_control(character: str) -> bool:
    """Line breaks, tabs and other control characters, and the Unicode line and paragraph separators."""
    return unicodedata.category(character) in ("Cc", "Zl", "Zp")


def one_line(value: object) -> object:
    """Refuse control characters in a name or title: they went into mail subjects and bodies (issue #21)."""
    if isinstance(value, str) and any(is_control(character) for character in value):
        raise ValueError(ONE_LINE_MESSAGE)
    return value


class EmailForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=1, max_length=EMAIL_MAX, examples=["alex@example.org"])

    _strip_email = field_validator("email", mode="before")(_strip)


class SignUp(EmailForm):
    display_name: str = Field(
        min_length=1, max_length=80, examples=["Alex Morgan"], description="The name shown where you choose to show it."
    )
    password: str = Field(min_length=10, max_length=256, examples=["correct horse battery"])

    _strip_name = field_validator("display_name", mode="before")(_strip)
    _one_line_name = field_validator("display_name")(one_line)


class SignIn(EmailForm):
    password: str = Field(min_length=1, max_length=256)


class CodeEntry(EmailForm):
    code: str = Field(pattern=r"^\d{6}$", examples=["042917"], description="The six-digit code from the email.")

    _strip_code = field_validator("code", mode="before")(
        lambda v: v.replace(" ", "").strip() if isinstance(v, str) else v
    )


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password: str = Field(min_length=10, max_length=256)


class NotificationEmail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    notification_email: str = Field(min_length=1, max_length=EMAIL_MAX, examples=["alex@personal.example"])

    _strip_email = field_validator("notification_email", mode="before")(_strip)


class NotificationCode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = Field(pattern=r"^\d{6}$")

    _strip_code = field_validator("code", mode="before")(
        lambda v: v.replace(" ", "").strip() if isinstance(v, str) else v
    )


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = Field(max_length=20)


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    verified: bool
    roles: list[Role]
    notification_email: str | None
    notification_email_verified: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Self:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            verified=user.is_verified,
            roles=sorted(user.role_set),
            notification_email=user.notification_email,
            notification_email_verified=user.notification_email_verified_at is not None,
            created_at=user.created_at,
        )


class Accepted(BaseModel):
    message: str


class CsrfTokenRead(BaseModel):
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every state-changing request.")
