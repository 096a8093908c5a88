"""Schemathesis against the JSON API's own contract (/openapi.json), signed in: no 5xx, every answer documented.

Every operation gets a bounded, reproducible set of generated requests (valid and invalid), sent by a signed-in
worker who is also an organizer, responder, moderator and admin, against petitions, comments and a response
that exist, so that generated ids often name real rows and the handlers get past their look-ups. Each answer
must not be a server error and must match the schema: a documented status code, the documented content type,
and a body that validates against the documented model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, update
from sqlalchemy.orm import Session

from app.accounts import sessions as account_sessions
from app.core.clock import FrozenClock
from app.core.cookieless import is_cookieless
from app.models.accounts import Role
from app.models.petitions import Petition
from app.responses import service as responses
from app.responses.schemas import CommitmentCreate, ResponseCreate
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, build_test_app, count_rows, make_settings, make_user, schema_app

pytestmark = pytest.mark.one_database("postgresql")

# The contract does not depend on the database: the app is built for its schema only, and never started.
CONTRACT = schema_app().openapi()
EXAMPLES = 10  # per operation; about 1,000 requests in all, on PostgreSQL (README, "Which database")

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
        # The coverage phase sends every boundary value of every field (60 requests for some operations): too many
        # for each run of the suite. Examples and fuzzing, valid and invalid data, stay.
        "phases": {"coverage": {"enabled": False}},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        },
    }
)
schema = schemathesis.openapi.from_dict(CONTRACT, config=CONFIG)
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@dataclass
class World:
    """What the module seeded: ids of rows that exist, by the path parameter that names them."""

    ids: dict[str, list[int]] = field(default_factory=dict)
    session_cookie: str = ""


# Hypothesis draws while a test runs, after the `seeded` fixture has filled this in: generated ids are
# replaced by ids of rows that exist half the time, so the handlers behind the look-ups run too.
WORLD = World()


@schema.hook("flatmap_path_parameters")
def _real_ids_half_the_time(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.just(value), st.sampled_from(WORLD.ids[name])) if WORLD.ids.get(name) else st.just(value)
            for name, value in path_parameters.items()
        }
    )


def _seed(db: Session, rt: Any) -> World:
    me = make_user(
        db, email="casey@example.org", name="Casey Organizer", roles=(Role.responder, Role.moderator, Role.admin)
    )
    other = factories.worker(db)
    draft = factories.draft_petition(db, rt, me)
    gathering = factories.petition_gathering_sponsors(db, rt, me, title="Fix the broken lifts in building B")
    in_moderation = factories.petition_in_moderation(db, rt, me, title="Publish the salary bands")
    mine = factories.open_petition(db, rt, me, title="Four-day week pilot for the support team", allow_anonymous=True)
    theirs = factories.open_petition(db, rt, other, title="Bring back the night bus")
    closed = factories.closed_petition(db, rt, me, title="Keep the canteen open late")
    for signer in (factories.worker(db), factories.worker(db), other):
        signatures.sign(db=db, rt=rt, petition_id=mine.id, user=signer, visibility="public", notify_updates=True)
    db.execute(
        update(Petition)
        .where(Petition.id == mine.id)
        .values(response_threshold_reached_at=NOW, response_due_at=NOW + timedelta(days=14))
    )
    db.commit()
    comment = factories.comment(db, rt, mine, other)
    reply = factories.comment(db, rt, mine, me, body="Thank you: we will raise it.", parent=comment)
    own = factories.comment(db, rt, theirs, me, body="Count me in.")
    answer = responses.post_response(
        db=db,
        rt=rt,
        petition=mine,
        responder=me,
        form=ResponseCreate(
            summary="We will run a pilot in spring.",
            details="The support team first.",
            status="accepted",
            commitments=[CommitmentCreate(text="Run the pilot", owner="Head of Support")],
        ),
    )
    db.commit()
    commitments = responses.responses(db=db, petition=mine)[0].commitments
    session_cookie = account_sessions.start(db=db, user=me, now=NOW, days=30)
    db.commit()
    return World(
        ids={
            "petition_id": [draft.id, gathering.id, in_moderation.id, mine.id, theirs.id, closed.id],
            "comment_id": [comment.id, reply.id, own.id],
            "user_id": [me.id, other.id],
            "response_id": [answer.id],
            "commitment_id": [item.id for item in commitments],
        },
        session_cookie=session_cookie,
    )


@pytest.fixture(scope="module")
def seeded(engine: Engine, database_url: str) -> Iterator[Connection]:
    """Seeded once: each operation's test then runs in a savepoint of this transaction."""
    with engine.connect() as connection:
        transaction = connection.begin()
        app = build_test_app(make_settings(database_url), connection, FrozenClock(NOW))
        with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as db:
            world = _seed(db, app.state.runtime)
        WORLD.ids, WORLD.session_cookie = world.ids, world.session_cookie
        try:
            yield connection
        finally:
            WORLD.ids = {}
            transaction.rollback()


@pytest.fixture
def connection(seeded: Connection) -> Iterator[Connection]:
    """This module's tests share the seeded rows; whatever an operation changes is undone after its test."""
    savepoint = seeded.begin_nested()
    try:
        yield seeded
    finally:
        if savepoint.is_active:
            savepoint.rollback()


@pytest.fixture
def signed_in(browser: Browser) -> Browser:
    browser.client.cookies.set(account_sessions.SESSION_COOKIE, WORLD.session_cookie, domain="testserver.local")
    return browser


@pytest.fixture
def csrf(signed_in: Browser) -> str:
    """One token for the whole test: it stays valid as long as the browser keeps its CSRF cookie."""
    return signed_in.csrf()


def _send(browser: Browser, case: schemathesis.Case, csrf: str) -> Any:
    """The generated request, sent from the signed-in browser with the CSRF header, as Browser.api sends it."""
    request = case.as_transport_kwargs(base_url="http://testserver")
    headers = dict(request.get("headers") or {})
    if case.method.upper() not in ("GET", "HEAD"):
        headers.setdefault("X-CSRF-Token", csrf)
    body: dict[str, Any] = {}
    if "json" in request:
        body["json"] = request["json"]
    elif isinstance(request.get("data"), (bytes, str)):
        body["content"] = request["data"]
    elif request.get("data") is not None:
        body["data"] = request["data"]
    return browser.client.request(case.method, request["url"], params=request.get("params"), headers=headers, **body)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_answers_as_its_schema_says(case: schemathesis.Case, signed_in: Browser, csrf: str) -> None:
    response = _send(signed_in, case, csrf)
    case.validate_response(response)


# -- what the fuzzing found, held by plain tests --------------------------------------------------------------


def test_every_error_the_api_gives_is_documented_in_its_one_shape() -> None:
    """Found first: no operation documented its 401, 403, 404, 409... and the 422 had FastAPI's shape, not ours."""
    for path, operations in CONTRACT["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = {int(status): answer for status, answer in responses.items() if int(status) >= 400}
            assert 503 in errors, (method, path)
            assert all(
                answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
                for answer in errors.values()
            ), (method, path)
            if "{" in path:
                assert 404 in errors, (method, path)
            if method != "get" and not is_cookieless(path):  # routes without cookies carry no CSRF token
                assert 403 in errors, (method, path)
    assert "HTTPValidationError" not in CONTRACT["components"]["schemas"]


def test_text_the_database_cannot_store_is_a_422_never_a_500(signed_in: Browser, csrf: str, db: Session) -> None:
    """Found on PostgreSQL, whose text columns refuse NUL characters: the category look-up failed in the driver
    and the API answered 500. SQLite stores them; both now answer 422 and write nothing."""
    before = count_rows(db, "petitions")
    draft = {
        "title": "Fix the lifts",
        "ask": "Repair both lifts.",
        "background": "They fail weekly.",
        "category": "work\x00place",
    }
    response = signed_in.client.post("/api/v1/petitions", json=draft, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    assert count_rows(db, "petitions") == before
