"""JSON API for the public scoreboard: the same figures, and the same chart series, as the page."""

from fastapi import APIRouter, Query

from app.core.database import PublicSessionDep
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.responses import scoreboard as scoreboards
from app.responses.schemas import ScoreboardRead
from app.routes.policy import OptionalUser

router = APIRouter(prefix="/api/v1", tags=["responses"], route_class=UnitOfWorkRoute)


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
) -> ScoreboardRead:
    board = scoreboards.scoreboard(db=db, now=rt.clock.now(), months=months)
    return ScoreboardRead.of(board, scoreboards.chart(board))
