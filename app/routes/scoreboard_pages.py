"""The public scoreboard page: how leadership answers petitions, month by month."""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.core.database import PublicSessionDep
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import render
from app.reports import organization
from app.responses import scoreboard as scoreboards
from app.responses.chart import bar_chart_svg
from app.routes.policy import OptionalUser
from app.routes.reports_pages import signatures_chart

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)


@router.get("/scoreboard", response_class=HTMLResponse)
def scoreboard(
    request: Request,
    user: OptionalUser,
    db: PublicSessionDep,
    rt: RuntimeDep,
    months: int = Query(12, ge=1, le=scoreboards.MAX_MONTHS),
) -> Response:
    board = scoreboards.scoreboard(db=db, now=rt.clock.now(), months=months)
    chart = scoreboards.chart(board)
    svg = bar_chart_svg(
        title=chart.title,
        labels=chart.labels,
        series=[(series.name, series.values, series.colour) for series in chart.series],
    )
    org = organization.build(db=db, now=rt.clock.now(), months=months)
    return render(
        request,
        "responses/scoreboard.html",
        {
            "board": board,
            "chart": chart,
            "chart_svg": svg,
            "months": months,
            "org": org,
            "signatures_chart": signatures_chart(org),
        },
    )
