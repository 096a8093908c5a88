"""Rendering pages: the Jinja2 environment, flash messages and the values every page needs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import BytecodeCache, StrictUndefined
from jinja2.bccache import Bucket

from app.core.i18n import Message
from app.core.settings import Environment, Settings

FLASH_COOKIE = "undersigned_flash"


def load_translations(settings: Settings) -> NullTranslations:
    """The catalog for `settings.locale`; English is written in the templates, so it needs none."""
    return Translations.load(str(settings.locale_dir), [settings.locale], domain="messages")


class _CompiledTemplates(BytecodeCache):
    """Every template compiled once per process, whichever app asks: Jinja keeps its templates per environment,
    and each app (a test suite builds hundreds; several servers may share a process) otherwise lexed, parsed and
    compiled all of them again. A template is found by its name and file and used only while its source is
    unchanged (Jinja checks the source's checksum); the environments that use it are configured alike
    (`build_templates`), and the key holds what their compiling depends on (extensions, gettext style, escaping)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED: dict[str, _CompiledTemplates] = {}


def build_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(settings.templates_dir))
    templates.env.add_extension("jinja2.ext.i18n")
    # newstyle: `_("%(n)s signatures", n=...)` interpolates and escapes its arguments itself.
    translations = load_translations(settings)
    templates.env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    locale = settings.locale
    templates.env.globals["html_lang"] = locale.replace("_", "-")  # BCP 47, as <html lang> and Intl want it

    def date_filter(value: date | datetime, pattern: str) -> str:
        """A date or time in the locale's words, by a CLDR pattern ("dd MMM y", "HH:mm"); times in UTC."""
        if isinstance(value, datetime):
            return format_datetime(value, pattern, tzinfo=UTC, locale=locale)
        return format_date(value, pattern, locale=locale)

    def number_filter(value: float | Decimal, pattern: str | None = None) -> str:
        """A number with the locale's grouping and decimal signs ("0.0": one decimal place)."""
        return format_decimal(value, format=pattern, locale=locale)

    def translate_filter(text: str | None) -> str | None:
        """Text the code chose (app.core.i18n.N_) in the deployment's language; unknown text stays as it is.
        A Message is translated before its parameters are filled in."""
        if isinstance(text, Message):
            if not text.params:
                return translations.gettext(text.template)
            return translations.gettext(text.template) % {
                name: parameter_text(value) for name, value in text.params.items()
            }
        return translations.gettext(text) if text else text

    def parameter_text(value: object) -> object:
        """A Message's parameter: a message translated in turn, a day in the locale's words."""
        if isinstance(value, Message):
            return translate_filter(value)
        if isinstance(value, date):
            return format_date(value, "dd MMMM", locale=locale)
        return value

    templates.env.filters["date"] = date_filter
    templates.env.filters["translate"] = translate_filter
    templates.env.filters["number"] = number_filter
    templates.env.globals["organization_name"] = settings.organization_name
    templates.env.globals["dev_tools_enabled"] = settings.dev_tools_enabled
    templates.env.globals["branding"] = None  # pages get the organization's (app/routes/organization_pages.py)
    templates.env.undefined = StrictUndefined
    autoescape = templates.env.autoescape  # Starlette's select_autoescape(): a new closure for each environment
    compiling = (
        tuple(sorted(templates.env.extensions)),
        templates.env.newstyle_gettext,  # type: ignore[attr-defined]
        (autoescape.__qualname__, *(cell.cell_contents for cell in autoescape.__closure__ or ()))
        if callable(autoescape)
        else autoescape,
    )
    templates.env.bytecode_cache = _COMPILED.setdefault(repr(compiling), _CompiledTemplates())
    # Jinja otherwise checks each template's file for changes on every render (a stat per template, several per
    # page: a tenth of the signed-in petition page's CPU in py-spy's samples of a server under the viral
    # petition's load). Only a developer editing templates under `make run` needs that.
    templates.env.auto_reload = settings.environment is Environment.development
    return templates


def compile_all(templates: Jinja2Templates) -> None:
    """Compile every template now, so that no request pays for it: a server process otherwise compiles each
    template at its first use, taking the CPU from its first readers (app/asgi.py calls this before a production
    server serves)."""
    for name in templates.env.list_templates():
        templates.env.get_template(name)


def _flash_serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.keyring.key("flash").hex(), salt="flash")


def flash(
    response: Response,
    request: Request,
    message: str,
    kind: str = "success",
    *,
    form: str | None = None,
    errors: Mapping[str, str] | None = None,
) -> Response:
    """Attach a one-time message to a redirect; the next page shows it once. A refusal of a small form inside a
    larger page names the form (its action) and each field's error, for the form to show (forms.html's
    small_form_summary)."""
    if isinstance(message, Message):  # the cookie keeps plain text: translated now, as the page would
        message = request.app.state.templates.env.filters["translate"](message)
    entry: dict[str, Any] = {"kind": kind, "message": message}
    if form is not None:
        entry["form"] = form
        entry["errors"] = dict(errors or {})
    messages = read_flashes(request) + [entry]
    response.set_cookie(
        FLASH_COOKIE,
        _flash_serializer(request).dumps(messages),
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookies,
        max_age=300,
    )
    return response


def read_flashes(request: Request) -> list[dict[str, Any]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        value = _flash_serializer(request).loads(raw)
    except BadSignature:
        return []
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def redirect(request: Request, url: str, message: str | None = None, kind: str = "success") -> RedirectResponse:
    """POST/Redirect/GET: 303 so the browser follows with GET."""
    response = RedirectResponse(url, status_code=303)
    if message:
        flash(response, request, message, kind)
    return response


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    flashes = read_flashes(request)
    page_context: dict[str, Any] = {
        "current_user": getattr(request.state, "viewer", None),
        "csrf_token": csrf_token(request),
        "flashes": flashes,
        # The refusals of small forms, by the form's action: the form shows them (includes/_forms.html).
        "form_refusals": {entry["form"]: entry for entry in flashes if isinstance(entry.get("form"), str)},
        **base_context(request),
    }
    page_context.update(context or {})
    response = request.app.state.templates.TemplateResponse(
        request, template, page_context, status_code=status_code, headers=dict(headers or {})
    )
    if flashes:
        response.delete_cookie(FLASH_COOKIE)
    return response


def csrf_token(request: Request) -> str:
    """The reader's CSRF token for the page's forms: from this browser's seed and, once signed in, its session."""
    seed = getattr(request.state, "csrf_seed", None)
    if not seed:
        return ""
    return str(request.app.state.keyring.csrf_token(seed, getattr(request.state, "csrf_session", None)))


def base_context(request: Request) -> dict[str, Any]:
    """What every page gets besides its reader (`render`, and the petition page's shared copy)."""
    values: dict[str, Any] = {
        "errors": {},
        "values": {},
        # The app's clock (a frozen one in tests), for templates that compare dates, such as an overdue badge.
        "now": request.app.state.runtime.clock.now(),
    }
    branding = getattr(request.state, "branding", None)
    if branding is not None:
        values["branding"] = branding
        if branding.name:
            values["organization_name"] = branding.name
    return values


def translate(request: Request, message: str, /, **params: object) -> str:
    """Text the code chose, marked with N_, in the deployment's language, with its %(name)s placeholders filled."""
    text = request.app.state.templates.env.filters["translate"](message)
    return text % params if params else text


def format_number(request: Request, value: int) -> str:
    """A number grouped the deployment's way, for text the code writes (the templates' `number` filter)."""
    return request.app.state.templates.env.filters["number"](value)


def format_when(request: Request, value: datetime, pattern: str) -> str:
    """A date or time by a CLDR pattern in the deployment's language (the templates' `date` filter)."""
    return request.app.state.templates.env.filters["date"](value, pattern)
