"""What moderators send, from the pages' forms and the JSON API alike: both validate through these."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from app.moderation.service import REASON_MAX


class Rejection(BaseModel):
    reason: str = Field(max_length=40, description="A code from the list of rejection reasons.")
    note: str | None = Field(default=None, max_length=REASON_MAX)


class Hiding(BaseModel):
    reason: str = Field(max_length=REASON_MAX)


class InvalidationRule(BaseModel):
    rule: str = Field(max_length=400_000, description="Addresses or @domains, one per line or comma-separated.")


class InvalidationRequest(InvalidationRule):
    reason: str = Field(max_length=500)
    expected: int | None = Field(
        default=None, ge=0, description="The count the preview returned: refused if missing, or if it changed since."
    )

    @field_validator("expected", mode="before")
    @classmethod
    def _not_previewed(cls, value: object) -> object:
        """A form sent before any preview has an empty count: the service asks for the preview first."""
        return None if isinstance(value, str) and not value.strip() else value


class InvalidationPreview(BaseModel):
    matched: int


class InvalidationRead(BaseModel):
    id: int
    rule: str
    reason: str
    matched: int
