"""Templates are compiled once per process and shared by every app built in it (app/core/templating.py): a
second app renders from the compiled code, and a template whose file changed is compiled again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest

from app.core.templating import build_templates, compile_all
from tests.conftest import make_settings

pytestmark = pytest.mark.one_database


def _counting_compiles(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    compiled: list[str | None] = []
    compile_source = jinja2.Environment.compile

    def counted(self: jinja2.Environment, source: str, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return compile_source(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counted)
    return compiled


def test_a_second_app_renders_what_the_first_compiled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{% if shown %}<p>{{ _('Hello, %(name)s', name=who) }}</p>{% endif %}")
    settings = make_settings("sqlite://", templates_dir=tmp_path)
    compiled = _counting_compiles(monkeypatch)
    first = build_templates(settings).env.get_template("page.html").render(shown=True, who="<Ana>")
    second = build_templates(settings).env.get_template("page.html").render(shown=True, who="<Ana>")
    assert first == second == "<p>Hello, &lt;Ana&gt;</p>"  # escaped by both, through the i18n extension
    assert compiled == ["page.html"]


def test_a_changed_template_is_compiled_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>before</p>")
    settings = make_settings("sqlite://", templates_dir=tmp_path)
    compiled = _counting_compiles(monkeypatch)
    assert build_templates(settings).env.get_template("page.html").render() == "<p>before</p>"
    page.write_text("<p>after, longer</p>")
    assert build_templates(settings).env.get_template("page.html").render() == "<p>after, longer</p>"
    assert compiled == ["page.html", "page.html"]


def test_a_server_compiles_every_template_before_its_first_request(
    app: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production server compiles every template before serving (app/asgi.py): a reader's first page then loads
    none from its file (nor from the compiled code shared by the process), and no render checks a file for changes
    (outside `make run`'s development environment)."""
    compile_all(app.state.templates)
    loaded: list[str] = []
    checked: list[str] = []
    load = jinja2.FileSystemLoader.load

    def counted_load(self: jinja2.BaseLoader, environment: jinja2.Environment, name: str, *args: Any) -> Any:
        loaded.append(name)
        return load(self, environment, name, *args)

    up_to_date = jinja2.Template.is_up_to_date

    def counted_check(self: jinja2.Template) -> bool:
        checked.append(str(self.name))
        return bool(up_to_date.fget(self))  # type: ignore[attr-defined]

    monkeypatch.setattr(jinja2.FileSystemLoader, "load", counted_load)
    monkeypatch.setattr(jinja2.Template, "is_up_to_date", property(counted_check))
    for path in ("/", "/petitions", "/signin", "/signup"):
        assert client.get(path).status_code == 200, path
    assert loaded == []
    assert checked == []
