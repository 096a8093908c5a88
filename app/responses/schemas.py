"""What the response surfaces accept and return."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models.responses import DETAILS_MAX, ROLE_MAX, SUMMARY_MAX, CommitmentStatus, ResponseStatus


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class CommitmentCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=500, examples=["Stop collecting screen recordings"])
    owner: str = Field(min_length=1, max_length=120, examples=["Chief Technology Officer"])
    due_on: date | None = Field(default=None, examples=["2027-03-31"])

    _strip_text = field_validator("text", "owner", mode="before")(_strip)
    _blank_due = field_validator("due_on", mode="before")(lambda v: None if v == "" else v)


class ResponseCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=SUMMARY_MAX, description="Shown first and in the email.")
    details: str = Field(min_length=1, max_length=DETAILS_MAX, description="Markdown.")
    status: ResponseStatus
    commitments: list[CommitmentCreate] = Field(default_factory=list, max_length=10)
    responder_role: str | None = Field(
        default=None,
        max_length=ROLE_MAX,
        examples=["Chief People Officer"],
        description="Shown with the responder's name on the petition's page.",
    )

    _strip_text = field_validator("summary", "details", mode="before")(_strip)
    _blank_role = field_validator("responder_role", mode="before")(
        lambda v: (v.strip() or None) if isinstance(v, str) else v
    )


class CommitmentChange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: CommitmentStatus
    note: str | None = Field(default=None, max_length=1000)

    _strip_note = field_validator("note", mode="before")(lambda v: (v.strip() or None) if isinstance(v, str) else v)


class JudgementCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    answers: bool = Field(description="Does the response answer the petition?")
    reason: str | None = Field(default=None, max_length=1000)
    follow_up: bool = Field(default=False, description="Ask leadership for a follow-up response.")

    _strip_reason = field_validator("reason", mode="before")(lambda v: (v.strip() or None) if isinstance(v, str) else v)


class CommitmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str
    owner: str
    due_on: date | None
    status: CommitmentStatus
    overdue: bool


class JudgementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    answers: bool
    reason: str | None
    follow_up_requested: bool
    updated_at: datetime


class ResponseRead(BaseModel):
    id: int
    summary: str
    details_html: str
    status: ResponseStatus
    created_at: datetime
    responder_name: str | None = Field(description="Who answered; null once their account is gone.")
    responder_role: str | None = Field(description="The role they gave, shown with their name.")
    commitments: list[CommitmentRead]
    judgement: JudgementRead | None


class DueRead(BaseModel):
    petition_id: int
    title: str
    signature_count: int
    response_due_at: datetime | None
    overdue: bool
    follow_up_requested: bool
