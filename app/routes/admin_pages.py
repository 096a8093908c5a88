"""Admin pages: accounts and roles, the managed lists, and the eligibility list."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts import service
from app.accounts.schemas import RoleChange
from app.audit import service as audit
from app.audit.sentences import sentence
from app.core.database import SessionDep
from app.core.errors import AppError, Conflict, InvalidInput, NotFound
from app.core.forms import validate
from app.core.i18n import N_
from app.core.pages import FormFields, form_error, refused
from app.core.routing import UnitOfWorkRoute
from app.core.runtime import RuntimeDep
from app.core.templating import format_number, redirect, render, translate
from app.core.types import Id
from app.models.accounts import GRANTABLE_ROLES, Role
from app.models.signatures import GroupKind
from app.organization import branding, eligibility
from app.organization import service as organization
from app.organization.schemas import RulesForm
from app.petitions import service as petitions
from app.routes.policy import Admin
from app.signatures import groups

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)

PAGE_SIZE = 50


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    admin: Admin,
    db: SessionDep,
    q: str = Query(default="", max_length=254),
    page: int = Query(default=1, ge=1, le=100_000),
) -> Response:
    users, total = service.list_accounts(db=db, query=q or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(
        request,
        "admin/users.html",
        {
            "users": users,
            "total": total,
            "q": q,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "grantable_roles": GRANTABLE_ROLES,
        },
    )


@router.post("/admin/users/{user_id}/roles", response_class=HTMLResponse)
def grant_role(
    request: Request, user_id: Id, admin: Admin, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    user = service.get_or_404(db=db, user_id=user_id)
    try:
        change = validate(RoleChange, fields)
        if not change.role:
            raise InvalidInput(N_("Choose a role to grant: responder, moderator or admin."))
        if change.role == Role.admin.value and fields.get("confirm") != "yes":
            # Admin can do everything, including granting admin: one more step, a page of its own (no script needed).
            if not user.is_verified:
                raise Conflict(N_("Only accounts with a confirmed address can be given a role."))
            if any(grant.role == Role.admin for grant in user.roles):
                raise Conflict(translate(request, N_("%(name)s is already an admin."), name=user.display_name))
            return render(request, "admin/confirm_admin.html", {"user": user})
        role = service.grant_role(db=db, rt=rt, actor=admin, user=user, role=change.role)
    except AppError as error:
        return refused(request, "/admin/users", error)
    return redirect(
        request,
        "/admin/users",
        translate(request, N_("%(name)s is now a %(role)s."), name=user.display_name, role=role.value),
    )


@router.post("/admin/users/{user_id}/roles/{role}/revoke", response_class=HTMLResponse)
def revoke_role(request: Request, user_id: Id, role: Role, admin: Admin, db: SessionDep, rt: RuntimeDep) -> Response:
    user = service.get_or_404(db=db, user_id=user_id)
    try:
        service.revoke_role(db=db, rt=rt, actor=admin, user=user, role=role)
    except AppError as error:
        return refused(request, "/admin/users", error)
    return redirect(
        request,
        "/admin/users",
        translate(request, N_("%(name)s is no longer a %(role)s."), name=user.display_name, role=role.value),
    )


LIST_KINDS = {"category": N_("Categories"), "department": N_("Departments"), "location": N_("Locations")}


def _list_kind(kind: str) -> str:
    if kind not in LIST_KINDS:
        raise NotFound(N_("There is no such list."))
    return kind


@router.get("/admin/lists", response_class=HTMLResponse)
def lists_page(request: Request, admin: Admin, db: SessionDep) -> Response:
    return render(
        request,
        "admin/lists.html",
        {
            "lists": [
                ("category", LIST_KINDS["category"], petitions.categories(db=db, active_only=False)),
                *[
                    (kind.value, LIST_KINDS[kind.value], groups.listing(db=db, kind=kind, active_only=False))
                    for kind in GroupKind
                ],
            ]
        },
    )


@router.post("/admin/lists/{kind}", response_class=HTMLResponse)
def add_to_list(
    request: Request, kind: str, admin: Admin, db: SessionDep, rt: RuntimeDep, fields: FormFields
) -> Response:
    kind = _list_kind(kind)
    name = fields.get("name", "")
    try:
        if kind == "category":
            petitions.add_category(db=db, name=name)
        else:
            groups.add(db=db, rt=rt, kind=GroupKind(kind), name=name)
        audit.record(db=db, rt=rt, actor=admin, action="list.added", subject=kind, detail={"name": name.strip()})
    except AppError as error:
        return refused(request, "/admin/lists", error)
    return redirect(
        request,
        "/admin/lists",
        translate(
            request,
            N_("“%(name)s” added to %(list)s."),
            name=name.strip(),
            list=translate(request, LIST_KINDS[kind]).lower(),
        ),
    )


@router.post("/admin/lists/{kind}/{item_id}/toggle", response_class=HTMLResponse)
def toggle_list_item(
    request: Request, kind: str, item_id: Id, admin: Admin, db: SessionDep, rt: RuntimeDep
) -> Response:
    kind = _list_kind(kind)
    item = (
        petitions.toggle_category(db=db, category_id=item_id)
        if kind == "category"
        else groups.toggle(db=db, rt=rt, kind=GroupKind(kind), group_id=item_id)
    )
    audit.record(
        db=db,
        rt=rt,
        actor=admin,
        action="list.offered" if item.active else "list.withdrawn",
        subject=kind,
        detail={"name": item.name},
    )
    message = (
        N_("“%(name)s” is offered again.")
        if item.active
        else N_("“%(name)s” is no longer offered (existing uses stay).")
    )
    return redirect(request, "/admin/lists", translate(request, message, name=item.name))


async def uploaded_file(request: Request) -> bytes:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return b""
    try:
        return await upload.read(eligibility.MAX_IMPORT_BYTES + 1)
    finally:
        await upload.close()


@router.get("/admin/eligibility", response_class=HTMLResponse)
def eligibility_page(request: Request, admin: Admin, db: SessionDep, rt: RuntimeDep) -> Response:
    return render(
        request,
        "admin/eligibility.html",
        {
            "size": eligibility.list_size(db=db),
            "members": eligibility.eligible_members(db=db, rt=rt),
            "domains": organization.current(db=db, rt=rt).allowed_email_domains,
        },
    )


@router.post("/admin/eligibility", response_class=HTMLResponse)
def import_eligibility(
    request: Request, admin: Admin, db: SessionDep, rt: RuntimeDep, raw: Annotated[bytes, Depends(uploaded_file)]
) -> Response:
    try:
        size = eligibility.replace_list(db=db, rt=rt, addresses=eligibility.parse_addresses(db=db, rt=rt, raw=raw))
        audit.record(
            db=db,
            rt=rt,
            actor=admin,
            action="eligibility.imported",
            subject="eligibility list",
            detail={"members": size},
        )
    except AppError as error:
        return form_error(
            request,
            "admin/eligibility.html",
            error,
            {},
            {
                "size": eligibility.list_size(db=db),
                "members": eligibility.eligible_members(db=db, rt=rt),
                "domains": organization.current(db=db, rt=rt).allowed_email_domains,
            },
        )
    return redirect(
        request,
        "/admin/eligibility",
        translate(
            request, N_("The list now holds %(size)s members; only they can sign."), size=format_number(request, size)
        ),
    )


@router.post("/admin/eligibility/clear", response_class=HTMLResponse)
def clear_eligibility(request: Request, admin: Admin, db: SessionDep, rt: RuntimeDep) -> Response:
    eligibility.clear_list(db=db, rt=rt)
    audit.record(db=db, rt=rt, actor=admin, action="eligibility.cleared", subject="eligibility list")
    return redirect(request, "/admin/eligibility", N_("The list is cleared: every confirmed member can sign."))


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, admin: Admin, db: SessionDep, before: int | None = Query(None, ge=1), check: bool = False
) -> Response:
    entries = audit.page(db=db, before=before, limit=PAGE_SIZE)
    return render(
        request,
        "audit/log.html",
        {
            "entries": [(entry, sentence(entry, lambda text: translate(request, text))) for entry in entries],
            "total": audit.size(db=db),
            "verification": audit.verify(db=db) if check else None,
            "older": entries[-1].seq if entries and entries[-1].seq > 1 else None,
        },
    )


def _rules_values(rules: organization.Rules) -> dict[str, str]:
    return {
        "allowed_email_domains": ", ".join(rules.allowed_email_domains),
        "response_threshold": str(rules.response_threshold),
        "escalation_threshold": str(rules.escalation_threshold),
        "response_days": str(rules.response_days),
        "sponsors_required": str(rules.sponsors_required),
    }


def _look(db: SessionDep, rt: RuntimeDep, fields: dict[str, str] | None = None) -> dict[str, object]:
    """The organization's look for the settings page's second form: what is saved, or what was just sent."""
    look = branding.current(db=db, rt=rt)
    values = {"name": look.name or "", "accent_colour": look.accent_colour or ""}
    if fields is not None:
        values = {name: fields.get(name, "") for name in values}
    return {
        "look": look,
        "look_values": values,
        "default_name": rt.settings.organization_name,
        "max_logo_kb": branding.MAX_LOGO_BYTES // 1024,
    }


@router.get("/admin/settings", response_class=HTMLResponse)
def settings_page(request: Request, admin: Admin, db: SessionDep, rt: RuntimeDep) -> Response:
    return render(
        request,
        "admin/settings.html",
        {
            "values": _rules_values(organization.current(db=db, rt=rt)),
            "defaults": _rules_values(organization.defaults(rt=rt)),
            **_look(db, rt),
        },
    )


async def branding_form(request: Request) -> tuple[dict[str, str], bytes | None]:
    """The look form's fields and the logo's bytes (None when no file was chosen); one byte past the limit is
    enough to refuse it."""
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    upload = form.get("logo")
    if upload is None or isinstance(upload, str):
        return fields, None
    try:
        content = await upload.read(branding.MAX_LOGO_BYTES + 1)
    finally:
        await upload.close()
    return fields, content or None


@router.post("/admin/branding", response_class=HTMLResponse)
def save_branding(
    request: Request,
    admin: Admin,
    db: SessionDep,
    rt: RuntimeDep,
    sent: Annotated[tuple[dict[str, str], bytes | None], Depends(branding_form)],
) -> Response:
    fields, upload = sent
    try:
        changed = branding.update(
            db=db,
            rt=rt,
            actor=admin,
            name=fields.get("name", ""),
            accent=fields.get("accent_colour", ""),
            upload=upload,
            remove_logo=fields.get("remove_logo") == "yes",
        )
    except AppError as error:
        if isinstance(error, branding.Refused):
            error = error.translated(lambda text: translate(request, text))
        return form_error(
            request,
            "admin/settings.html",
            error,
            _rules_values(organization.current(db=db, rt=rt)),
            {"defaults": _rules_values(organization.defaults(rt=rt)), **_look(db, rt, fields)},
        )
    if not changed:
        return redirect(request, "/admin/settings", N_("Nothing changed."), "info")
    return redirect(request, "/admin/settings", N_("Saved: every page shows the organization's new look."))


@router.post("/admin/settings", response_class=HTMLResponse)
def save_settings(request: Request, admin: Admin, db: SessionDep, rt: RuntimeDep, fields: FormFields) -> Response:
    try:
        changed = organization.update(db=db, rt=rt, actor=admin, form=validate(RulesForm, fields))
        if "sponsors_required" in changed:
            petitions.advance_sponsored(db=db, rt=rt, required=organization.rules_in(db=db, rt=rt).sponsors_required)
    except AppError as error:
        return form_error(
            request,
            "admin/settings.html",
            error,
            fields,
            {"defaults": _rules_values(organization.defaults(rt=rt)), **_look(db, rt)},
        )
    if not changed:
        return redirect(request, "/admin/settings", N_("Nothing changed."), "info")
    return redirect(
        request,
        "/admin/settings",
        N_("Saved. The change is in the audit log; petitions already open keep their thresholds."),
    )
