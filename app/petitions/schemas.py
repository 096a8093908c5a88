"""What the petition surfaces accept and return."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.accounts.schemas import one_line
from app.models.lifecycle import PetitionState
from app.models.petitions import ASK_MAX, BACKGROUND_MAX, DECISION_MAKER_MAX, TITLE_MAX, Petition


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return _strip(value)


def _checkbox(value: object) -> object:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "on", "yes")
    return value


class PetitionIdea(BaseModel):
    """The first stage: enough to look for similar petitions before the background is written."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=TITLE_MAX, examples=["Stop recording our screens to train AI"])
    ask: str = Field(
        min_length=1,
        max_length=ASK_MAX,
        description="What we ask for.",
        examples=["End the mandatory keystroke and screen recording programme."],
    )

    _strip_text = field_validator("title", "ask", mode="before")(_strip)
    _one_line_title = field_validator("title")(one_line)


class PetitionText(PetitionIdea):
    background: str = Field(min_length=1, max_length=BACKGROUND_MAX, description="Why we ask for it.")
    decision_maker: str | None = Field(default=None, max_length=DECISION_MAKER_MAX, examples=["Chief People Officer"])

    _strip_background = field_validator("background", mode="before")(_strip)
    _none_decision_maker = field_validator("decision_maker", mode="before")(_blank_to_none)


class PetitionDraft(PetitionText):
    category: str = Field(min_length=1, max_length=40, description="A category slug.", examples=["workplace"])
    deadline: date | None = Field(default=None, description="Last day for signatures (optional).")
    collect_attributes: bool = Field(default=False, description="Signers may give their department/location.")
    allow_anonymous: bool = Field(default=False, description="Colleagues may comment under a pseudonym.")

    _none_deadline = field_validator("deadline", mode="before")(_blank_to_none)
    _checkboxes = field_validator("collect_attributes", "allow_anonymous", mode="before")(_checkbox)


class PetitionCorrection(PetitionText):
    note: str = Field(min_length=1, max_length=500, description="What changed and why: shown with the version.")

    _strip_note = field_validator("note", mode="before")(_strip)


class OrganizerInvite(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=1, max_length=254)

    _strip_email = field_validator("email", mode="before")(_strip)


class UpdateCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=120)
    body: str = Field(min_length=1, max_length=5000)

    _strip_text = field_validator("title", "body", mode="before")(_strip)
    _one_line_title = field_validator("title")(one_line)


class ListFilter(StrEnum):
    open = "open"
    awaiting_response = "awaiting_response"
    responded = "responded"
    closed = "closed"
    all = "all"


class ListSort(StrEnum):
    most_signed = "most_signed"
    newest = "newest"
    trending = "trending"
    closing_soon = "closing_soon"
    relevance = "relevance"


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slug: str
    name: str


class PetitionSummary(BaseModel):
    id: int
    title: str
    state: PetitionState
    category: CategoryRead
    signature_count: int
    response_threshold: int | None
    opened_at: datetime | None
    deadline: datetime | None
    response_due_at: datetime | None
    url: str

    @classmethod
    def of(cls, petition: Petition, **given: object) -> Self:
        """`petition` in this shape: each field read from the petition's attribute of the same name, unless `given`."""
        values = {
            name: given[name] if name in given else getattr(petition, name)
            for name in cls.model_fields
            if name != "url"
        }
        return cls.model_validate({**values, "url": f"/petitions/{petition.id}"}, from_attributes=True)


class PetitionRead(PetitionSummary):
    ask: str
    background: str
    decision_maker: str | None
    version: int
    allow_anonymous: bool
    collect_attributes: bool
    escalation_threshold: int | None
    response_threshold_reached_at: datetime | None
    escalation_threshold_reached_at: datetime | None
    closed_at: datetime | None
    sponsor_count: int
    sponsors_required: int
    rejection: str | None
    rejection_detail: str | None


class PetitionPage(BaseModel):
    items: list[PetitionSummary]
    total: int
    page: int
    pages: int


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    title: str
    ask: str
    background: str
    decision_maker: str | None
    note: str | None
    content_hash: str
    created_at: datetime


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    at: datetime
    detail: str | None


class UpdateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    created_at: datetime


class SponsorLink(BaseModel):
    url: str
    sponsors: int
    sponsors_required: int
