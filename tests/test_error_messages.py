"""Error messages take parameters, so they translate (issue #23): a message built with an f-string or `%` cannot be
found in the catalog and shows in English on every page. Messages are marked with N_ and filled by Message."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import app.core.errors as errors_module
from app.core.errors import AppError, Conflict
from app.core.i18n import N_, Message

APP = Path(__file__).resolve().parent.parent / "app"
ERRORS = {name for name, value in vars(errors_module).items() if inspect.isclass(value) and issubclass(value, AppError)}


def built_text(node: ast.expr) -> bool:
    """An f-string, `"..." % x`, `"...".format(...)` or `"..." + x`: text the catalog cannot hold."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def built_messages(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name not in ERRORS:
                continue
            texts = list(node.args[:1])
            for keyword in node.keywords:
                if keyword.arg == "fields" and isinstance(keyword.value, ast.Dict):
                    texts += keyword.value.values
            found += [
                f"{path.relative_to(root.parent)}:{text.lineno}: {ast.unparse(text)[:100]}"
                for text in texts
                if built_text(text)
            ]
    return found


def test_no_error_message_is_built_from_pieces() -> None:
    found = built_messages(APP)
    assert not found, "Use Message(N_('... %(name)s ...'), name=...):\n" + "\n".join(found)


def test_the_guard_sees_an_f_string(tmp_path: Path) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "service.py").write_text(
        "def refuse(name, n):\n"
        '    raise Conflict(f"{name} is already here.")\n'
        "def check(n):\n"
        '    raise InvalidInput(N_("Please correct the highlighted fields."), fields={"n": f"At most {n}."})\n'
        "def fine(name):\n"
        '    raise Conflict(Message(N_("%(name)s is already here."), name=name))\n'
    )
    assert [line.split(":")[1] for line in built_messages(package)] == ["2", "4"]


def test_a_message_reads_as_english_and_keeps_its_parts() -> None:
    message = Message(N_("%(name)s may send %(count)s updates."), name="Ada", count=12)
    assert message == "Ada may send 12 updates."
    assert (message.template, message.params) == ("%(name)s may send %(count)s updates.", {"name": "Ada", "count": 12})
    error = Conflict(message)
    assert isinstance(error.message, Message)
    assert error.message == "Ada may send 12 updates." and error.message.template == message.template
