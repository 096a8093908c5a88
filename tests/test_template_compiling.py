"""Templates are compiled once per process and shared by every app built in it (app/core/templating.py): a
second app renders from the compiled code, and a template whose file changed is compiled again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest

from app.core.templating import build_templates
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
