"""The public scoreboard page: how leadership answers petitions, month by month."""

from datetime import timedelta

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.core.database import PublicSessionDep
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import render
from app.reports import ballots as ballot_reports
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
    # The signers' verdicts on leadership's responses (issue #25), over the same months as the board.
    since = rt.clock.now() - timedelta(days=31 * months)
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
            "ratifications": ballot_reports.recent_ratifications(db, rt, since),
        },
    )
