"""JSON API for the public scoreboard: the same figures, and the same chart series, as the page."""

from dataclasses import asdict
from datetime import date, datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.core.database import PublicSessionDep
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.responses import scoreboard as scoreboards
from app.routes.policy import OptionalUser

router = APIRouter(prefix="/api/v1", tags=["responses"], route_class=UnitOfWorkRoute)


class TallyRead(BaseModel):
    reached: int = Field(description="Petitions that reached their response threshold.")
    answered_on_time: int = Field(description="First response at or before the due time.")
    answered_late: int = Field(description="First response after the due time.")
    unanswered_overdue: int = Field(description="No response yet, and the due time has passed.")
    unanswered_within_time: int = Field(description="No response yet, still before the due time.")


class MonthRead(TallyRead):
    month: str = Field(description="The calendar month (UTC) the threshold was reached.", examples=["2026-11"])
    label: str = Field(examples=["Nov 2026"])


class ResponseTimesRead(BaseModel):
    answered: int = Field(description="Answered petitions the times are computed over.")
    median_days: float | None = Field(description="Median days from reaching the threshold to the first response.")
    p90_days: float | None = Field(
        description="90% of answered petitions were answered within this many days (nearest rank)."
    )


class CommitmentsRead(BaseModel):
    total: int
    planned: int
    in_progress: int
    done: int
    dropped: int
    overdue: int = Field(description="Planned or in progress, with a due date before today (UTC).")


class ChartSeriesRead(BaseModel):
    name: str
    values: list[int] = Field(description="One value per label.")
    colour: str = Field(examples=["#0b5cad"])


class ChartRead(BaseModel):
    title: str
    labels: list[str]
    series: list[ChartSeriesRead] = Field(description="Stacked from the bottom up, in this order.")


class ScoreboardRead(BaseModel):
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


@router.get(
    "/scoreboard",
    response_model=ScoreboardRead,
    summary="How leadership answers petitions that reached their response threshold, per month",
)
def scoreboard(
    user: OptionalUser,
    db: PublicSessionDep,
    rt: RuntimeDep,
    months: int = Query(
        12, ge=1, le=scoreboards.MAX_MONTHS, description="Calendar months to cover, the current one included."
    ),
) -> dict[str, object]:
    board = scoreboards.scoreboard(db=db, now=rt.clock.now(), months=months)
    return {**asdict(board), "on_time_share": board.on_time_share, "chart": asdict(scoreboards.chart(board))}
