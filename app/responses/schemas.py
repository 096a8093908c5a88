"""What the response surfaces accept and return."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models.petitions import Petition
from app.models.responses import (
    DETAILS_MAX,
    ROLE_MAX,
    SUMMARY_MAX,
    Commitment,
    CommitmentStatus,
    Judgement,
    PetitionResponse,
    ResponseStatus,
)
from app.responses.scoreboard import Chart, Scoreboard


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

    @classmethod
    def of(cls, commitment: Commitment, *, overdue: bool) -> Self:
        return cls(
            id=commitment.id,
            text=commitment.text,
            owner=commitment.owner,
            due_on=commitment.due_on,
            status=commitment.status,
            overdue=overdue,
        )


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

    @classmethod
    def of(
        cls,
        response: PetitionResponse,
        *,
        details_html: str,
        responder_name: str | None,
        commitments: Sequence[CommitmentRead],
        judgement: Judgement | None,
    ) -> Self:
        return cls(
            id=response.id,
            summary=response.summary,
            details_html=details_html,
            status=response.status,
            created_at=response.created_at,
            responder_name=responder_name,
            responder_role=response.responder_role,
            commitments=list(commitments),
            judgement=JudgementRead.model_validate(judgement) if judgement is not None else None,
        )


class DueRead(BaseModel):
    petition_id: int
    title: str
    signature_count: int
    response_due_at: datetime | None
    overdue: bool
    follow_up_requested: bool

    @classmethod
    def of(cls, petition: Petition, *, overdue: bool, follow_up_requested: bool) -> Self:
        return cls(
            petition_id=petition.id,
            title=petition.title,
            signature_count=petition.signature_count,
            response_due_at=petition.response_due_at,
            overdue=overdue,
            follow_up_requested=follow_up_requested,
        )


# -- the public scoreboard (app/responses/scoreboard.py) --------------------------------------------------------


class TallyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reached: int = Field(description="Petitions that reached their response threshold.")
    answered_on_time: int = Field(description="First response at or before the due time.")
    answered_late: int = Field(description="First response after the due time.")
    unanswered_overdue: int = Field(description="No response yet, and the due time has passed.")
    unanswered_within_time: int = Field(description="No response yet, still before the due time.")


class MonthRead(TallyRead):
    month: str = Field(description="The calendar month (UTC) the threshold was reached.", examples=["2026-11"])
    label: str = Field(examples=["Nov 2026"])


class ResponseTimesRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    answered: int = Field(description="Answered petitions the times are computed over.")
    median_days: float | None = Field(description="Median days from reaching the threshold to the first response.")
    p90_days: float | None = Field(
        description="90% of answered petitions were answered within this many days (nearest rank)."
    )


class CommitmentsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    total: int
    planned: int
    in_progress: int
    done: int
    dropped: int
    overdue: int = Field(description="Planned or in progress, with a due date before today (UTC).")


class ChartSeriesRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    values: list[int] = Field(description="One value per label.")
    colour: str = Field(examples=["#0b5cad"])


class ChartRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str
    labels: list[str]
    series: list[ChartSeriesRead] = Field(description="Stacked from the bottom up, in this order.")


class ScoreboardRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    generated_at: datetime
    first_month: date = Field(description="The first day of the oldest month covered.")
    months: list[MonthRead] = Field(description="Oldest first, the current month last.")
    totals: TallyRead
    on_time_share: float | None = Field(
        description="Answered on time, as a share of the petitions answered or past due."
    )
    response_times: ResponseTimesRead
    commitments: CommitmentsRead = Field(description="Every commitment on a public petition, whenever made.")
    chart: ChartRead

    @classmethod
    def of(cls, board: Scoreboard, chart: Chart) -> Self:
        """The scoreboard and its chart, read from the figures' own fields."""
        return cls(
            generated_at=board.generated_at,
            first_month=board.first_month,
            months=[MonthRead.model_validate(month) for month in board.months],
            totals=TallyRead.model_validate(board.totals),
            on_time_share=board.on_time_share,
            response_times=ResponseTimesRead.model_validate(board.response_times),
            commitments=CommitmentsRead.model_validate(board.commitments),
            chart=ChartRead.model_validate(chart),
        )
