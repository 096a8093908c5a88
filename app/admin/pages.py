"""Admin pages: accounts and the roles granted to them."""

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts import service
from app.accounts.models import GRANTABLE_ROLES, Role
from app.accounts.schemas import RoleChange
from app.core.database import SessionDep
from app.core.errors import AppError
from app.core.forms import validate
from app.core.pages import FormFields
from app.core.policy import Admin
from app.core.runtime import RuntimeDep
from app.core.templating import redirect, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, admin: Admin, db: SessionDep, q: str = Query(default="", max_length=254),
               page: int = Query(default=1, ge=1, le=100_000)) -> Response:
    users, total = service.list_accounts(db=db, query=q or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(request, "admin/users.html", {"users": users, "total": total, "q": q, "page": page,
                                                "pages": max(1, -(-total // PAGE_SIZE)),
                                                "grantable_roles": GRANTABLE_ROLES})


@router.post("/admin/users/{user_id}/roles", response_class=HTMLResponse)
def grant_role(request: Request, user_id: int, admin: Admin, db: SessionDep, rt: RuntimeDep,
               fields: FormFields) -> Response:
    user = service.get_or_404(db=db, user_id=user_id)
    try:
        change = validate(RoleChange, fields)
        role = service.grant_role(db=db, rt=rt, actor=admin, user=user, role=change.role)
    except AppError as error:
        db.rollback()
        return redirect(request, "/admin/users", error.fields.get("role") or error.message, "error")
    return redirect(request, "/admin/users", f"{user.display_name} is now a {role.value}.")


@router.post("/admin/users/{user_id}/roles/{role}/revoke", response_class=HTMLResponse)
def revoke_role(request: Request, user_id: int, role: Role, admin: Admin, db: SessionDep) -> Response:
    user = service.get_or_404(db=db, user_id=user_id)
    try:
        service.revoke_role(db=db, actor=admin, user=user, role=role)
    except AppError as error:
        db.rollback()
        return redirect(request, "/admin/users", error.message, "error")
    return redirect(request, "/admin/users", f"{user.display_name} is no longer a {role.value}.")
