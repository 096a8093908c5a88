"""The organization's look as browsers fetch it: the logo and the accent colour's stylesheet, and the branding every
page's header shows."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core.database import SessionDep
from app.core.errors import NotFound
from app.core.i18n import N_
from app.core.routing import UnitOfWorkRoute, commit_now
from app.core.runtime import RuntimeDep
from app.organization import branding
from app.routes.policy import Anyone

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

# Both addresses carry a version (the logo's hash, the colour), so a browser may keep what it fetched for good.
FOREVER = "public, max-age=31536000, immutable"
# A logo opened on its own runs nothing and loads nothing, whatever the file held.
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def attach(request: Request, db: SessionDep, rt: RuntimeDep) -> None:
    """For every page: the branding its header shows (remembered for a few seconds, so rarely a query). Routes of
    the API schema that share a router with pages (the health checks beside the home page) are left alone."""
    route = request.scope.get("route")
    if getattr(route, "include_in_schema", False):
        return
    began = db.in_transaction()
    request.state.branding = branding.current(db=db, rt=rt)
    if not began and db.in_transaction():
        # It was read now, before the handler: give the connection back rather than hold it across the next
        # thread hop (app/core/routing.py says why).
        commit_now(db)


@router.get("/organization/logo")
def logo(anyone: Anyone, db: SessionDep) -> Response:
    found = branding.logo(db=db)
    if found is None:
        raise NotFound(N_("This organization has no logo."))
    content, media_type, digest = found
    return Response(
        content,
        media_type=media_type,
        headers={
            "Cache-Control": FOREVER,
            "ETag": f'"{digest[:32]}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": LOGO_POLICY,
            "Content-Disposition": "inline",
        },
    )


@router.get("/organization/style.css")
def accent_stylesheet(anyone: Anyone, db: SessionDep, rt: RuntimeDep) -> Response:
    accent = branding.current(db=db, rt=rt).accent_colour
    if accent is None:
        raise NotFound(N_("This organization uses the default colours."))
    return Response(
        branding.stylesheet(accent),
        media_type="text/css",
        headers={"Cache-Control": FOREVER, "X-Content-Type-Options": "nosniff"},
    )
