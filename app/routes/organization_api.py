"""JSON API for the organization's rules (admins): the same service as the admin page."""

from dataclasses import asdict

from fastapi import APIRouter

from app.core.database import SessionDep
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.organization import service
from app.organization.schemas import RulesForm, RulesRead
from app.petitions import service as petitions
from app.routes.policy import Admin

router = APIRouter(prefix="/api/v1", tags=["admin"], route_class=UnitOfWorkRoute)


@router.get("/admin/rules", response_model=RulesRead, summary="The organization's rules in force (admins)")
def read_rules(admin: Admin, db: SessionDep, rt: RuntimeDep) -> dict[str, object]:
    return asdict(service.current(db=db, rt=rt))


@router.put(
    "/admin/rules", response_model=RulesRead, summary="Change the organization's rules (admins; each change is audited)"
)
def update_rules(body: RulesForm, admin: Admin, db: SessionDep, rt: RuntimeDep) -> dict[str, object]:
    changed = service.update(db=db, rt=rt, actor=admin, form=body)
    rules = service.rules_in(db=db, rt=rt)  # read, not memoized: the change is not committed yet
    if "sponsors_required" in changed:
        petitions.advance_sponsored(db=db, rt=rt, required=rules.sponsors_required)
    return asdict(rules)
