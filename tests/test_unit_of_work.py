"""One unit of work per request: the route class commits what a handler wrote, or nothing when it answers a failure.

Each handler here writes through a service-like flush, then answers; a row that survives a failure answer is a
write the person was told did not happen.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.core.routing import AfterCommit, UnitOfWorkRoute, refusal
from app.models.petitions import Category


@pytest.fixture
def app(connection: Connection) -> FastAPI:
    def session() -> Iterator[Session]:
        db = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            db.close()

    router = APIRouter(route_class=UnitOfWorkRoute)

    def flushed(db: Session, slug: str) -> None:
        db.add(Category(slug=slug, name=slug))
        db.flush()

    @router.post("/{slug}/ok")
    def ok(slug: str, db: Session = Depends(session)) -> Response:
        flushed(db, slug)
        return RedirectResponse("/", status_code=303)

    @router.post("/{slug}/form-error")
    def form_error(slug: str, db: Session = Depends(session)) -> Response:
        flushed(db, slug)
        return HTMLResponse("Please check what you entered", status_code=422)

    @router.post("/{slug}/json-error")
    def json_error(slug: str, db: Session = Depends(session)) -> Response:
        flushed(db, slug)
        return JSONResponse({"error": "conflict"}, status_code=409)

    @router.post("/{slug}/refused")
    def refused(slug: str, db: Session = Depends(session)) -> Response:
        flushed(db, slug)
        return refusal(RedirectResponse("/", status_code=303))

    @router.post("/{slug}/after-commit")
    def after_commit(slug: str, db: Session = Depends(session)) -> Response:
        flushed(db, slug)

        def build() -> Response:
            # An export's file is read only once its audit record is committed, and holds none of its locks.
            return JSONResponse({"unit_of_work_open": db.in_transaction()})

        return AfterCommit(build)

    app = FastAPI()
    app.include_router(router)
    return app


def _stored(db: Session, slug: str) -> bool:
    return db.scalar(select(Category.id).where(Category.slug == slug)) is not None


def test_a_success_keeps_what_the_handler_wrote(app: FastAPI, db: Session) -> None:
    with TestClient(app) as client:
        assert client.post("/kept/ok", follow_redirects=False).status_code == 303
    assert _stored(db, "kept")


@pytest.mark.parametrize(("route", "status"), [("form-error", 422), ("json-error", 409), ("refused", 303)])
def test_a_failure_answer_after_a_flush_leaves_no_row(app: FastAPI, db: Session, route: str, status: int) -> None:
    with TestClient(app) as client:
        assert client.post(f"/lost-{route}/{route}", follow_redirects=False).status_code == status
    assert not _stored(db, f"lost-{route}")


def test_a_response_built_after_commit_sees_the_committed_work(app: FastAPI, db: Session) -> None:
    with TestClient(app) as client:
        assert client.post("/audited/after-commit").json() == {"unit_of_work_open": False}
    assert _stored(db, "audited")


# The request boundary (the route class, and get_db behind it) is the only code that commits; commands and jobs
# end their work with `sessionmaker.begin()`. A service or a handler that commits ends a unit of work the person
# may still be refused.
COMMITTERS = {"app/core/routing.py", "app/core/database.py"}


def test_only_the_request_boundary_commits() -> None:
    root = Path(__file__).resolve().parent.parent
    committing = set()
    for path in sorted((root / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
                committing.add(str(path.relative_to(root)))
    assert committing == COMMITTERS
