"""The authorization matrix, generated from the app's route table: every route, every role, signed out.

Adding a route without declaring its access level, or without an entry here, fails this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from app.accounts import sessions as account_sessions
from app.core.access import Access, declared_access
from app.core.clock import FrozenClock
from app.core.web import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER
from app.main import create_app
from app.models.accounts import Role
from app.routes.policy import moderated_petition, organized_petition, respondable_petition
from tests import factories
from tests.conftest import Browser, build_test_app, forget_earlier_requests, make_settings, make_user, served_routes

pytestmark = pytest.mark.one_database

EXPECTED: dict[tuple[str, str], Access] = {
    ("GET", "/"): Access.public,
    ("GET", "/healthz"): Access.public,
    ("GET", "/readyz"): Access.public,
    ("GET", "/signup"): Access.public,
    ("POST", "/signup"): Access.public,
    ("GET", "/verify"): Access.public,
    ("POST", "/verify"): Access.public,
    ("POST", "/verify/resend"): Access.public,
    ("GET", "/verify/link/{token}"): Access.public,
    ("POST", "/verify/link/{token}"): Access.public,
    ("GET", "/signin"): Access.public,
    ("POST", "/signin"): Access.public,
    ("GET", "/signin/link"): Access.public,
    ("POST", "/signin/link"): Access.public,
    ("GET", "/signin/link/{token}"): Access.public,
    ("POST", "/signin/link/{token}"): Access.public,
    ("GET", "/password/forgot"): Access.public,
    ("POST", "/password/forgot"): Access.public,
    ("GET", "/password/reset/{token}"): Access.public,
    ("POST", "/password/reset/{token}"): Access.public,
    ("POST", "/signout"): Access.account,
    ("POST", "/signout/everywhere"): Access.account,
    ("GET", "/account"): Access.worker,
    ("POST", "/account/notification-email"): Access.worker,
    ("POST", "/account/notification-email/verify"): Access.worker,
    ("POST", "/account/notification-email/remove"): Access.worker,
    ("POST", "/account/petitions/{petition_id}/mail"): Access.worker,
    ("POST", "/account/poll-mail"): Access.worker,
    ("POST", "/account/poll-groups"): Access.worker,
    ("GET", "/unsubscribe/{token}"): Access.public,
    ("POST", "/unsubscribe/{token}"): Access.public,
    ("GET", "/wallet"): Access.worker,
    ("GET", "/wallet/link"): Access.worker,
    ("GET", "/admin/users"): Access.admin,
    ("POST", "/admin/users/{user_id}/roles"): Access.admin,
    ("POST", "/admin/users/{user_id}/roles/{role}/revoke"): Access.admin,
    ("GET", "/petitions"): Access.public,
    ("GET", "/petitions/new"): Access.worker,
    ("POST", "/petitions/new"): Access.worker,
    ("POST", "/petitions"): Access.worker,
    ("GET", "/petitions/mine"): Access.worker,
    ("GET", "/petitions/{petition_id}"): Access.public,
    ("GET", "/petitions/{petition_id}/versions"): Access.public,
    # Public petitions only, and the same for every reader: they read no session at all.
    ("GET", "/petitions/{petition_id}/qr.svg"): Access.public,
    ("GET", "/petitions/{petition_id}/poster.pdf"): Access.public,
    ("GET", "/petitions/{petition_id}/edit"): Access.organizer,
    ("POST", "/petitions/{petition_id}/edit"): Access.organizer,
    ("POST", "/petitions/{petition_id}/correct"): Access.organizer,
    ("POST", "/petitions/{petition_id}/submit"): Access.organizer,
    ("GET", "/petitions/{petition_id}/sponsor/{token}"): Access.worker,
    ("POST", "/petitions/{petition_id}/sponsor/{token}"): Access.worker,
    ("POST", "/petitions/{petition_id}/organizers"): Access.organizer,
    ("GET", "/petitions/{petition_id}/organizers/invitations/{token}"): Access.worker,
    ("POST", "/petitions/{petition_id}/organizers/invitations/{token}"): Access.worker,
    ("POST", "/petitions/{petition_id}/organizers/{user_id}/remove"): Access.organizer,
    ("POST", "/petitions/{petition_id}/updates"): Access.organizer,
    ("POST", "/petitions/{petition_id}/close"): Access.organizer,
    ("POST", "/petitions/{petition_id}/follow"): Access.worker,
    ("POST", "/petitions/{petition_id}/unfollow"): Access.worker,
    ("POST", "/petitions/{petition_id}/sign"): Access.worker,
    ("POST", "/petitions/{petition_id}/withdraw"): Access.worker,
    ("POST", "/petitions/{petition_id}/hide-name"): Access.worker,
    ("GET", "/petitions/{petition_id}/signers"): Access.organizer,
    # Polls (issue #25): the list and a poll follow who may read them; pulse polls are for responders and admins.
    ("GET", "/polls"): Access.public,
    ("GET", "/polls/new"): Access.pulse,
    ("POST", "/polls/new"): Access.pulse,
    ("GET", "/polls/{ballot_id}"): Access.public,
    ("GET", "/polls/{ballot_id}/results.{fmt}"): Access.public,
    ("POST", "/polls/{ballot_id}/close"): Access.worker,
    ("GET", "/polls/{ballot_id}/edit"): Access.worker,
    ("POST", "/polls/{ballot_id}/edit"): Access.worker,
    ("GET", "/petitions/{petition_id}/polls/new"): Access.organizer,
    ("POST", "/petitions/{petition_id}/polls/new"): Access.organizer,
    ("GET", "/petitions/{petition_id}/responses/{response_id}/ratify"): Access.organizer,
    ("POST", "/petitions/{petition_id}/responses/{response_id}/ratify"): Access.organizer,
    ("GET", "/moderation"): Access.moderator,
    ("GET", "/moderation/petitions/{petition_id}"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/claim"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/release"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/open"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/reject"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/hide"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/restore"): Access.moderator,
    ("GET", "/api/v1/categories"): Access.public,
    ("GET", "/api/v1/petitions"): Access.public,
    ("GET", "/api/v1/petitions/similar"): Access.public,
    ("POST", "/api/v1/petitions"): Access.worker,
    ("GET", "/api/v1/petitions/{petition_id}"): Access.public,
    ("PUT", "/api/v1/petitions/{petition_id}"): Access.organizer,
    ("POST", "/api/v1/petitions/{petition_id}/corrections"): Access.organizer,
    ("POST", "/api/v1/petitions/{petition_id}/submit"): Access.organizer,
    ("GET", "/api/v1/petitions/{petition_id}/sponsor-link"): Access.organizer,
    ("POST", "/api/v1/petitions/{petition_id}/sponsorships"): Access.worker,
    ("GET", "/api/v1/petitions/{petition_id}/versions"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/timeline"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/updates"): Access.public,
    ("POST", "/api/v1/petitions/{petition_id}/updates"): Access.organizer,
    ("POST", "/api/v1/petitions/{petition_id}/organizers"): Access.organizer,
    ("DELETE", "/api/v1/petitions/{petition_id}/organizers/{user_id}"): Access.organizer,
    ("POST", "/api/v1/petitions/{petition_id}/close"): Access.organizer,
    ("PUT", "/api/v1/petitions/{petition_id}/follow"): Access.worker,
    ("DELETE", "/api/v1/petitions/{petition_id}/follow"): Access.worker,
    ("POST", "/api/v1/petitions/{petition_id}/signature"): Access.worker,
    ("GET", "/api/v1/petitions/{petition_id}/signature"): Access.worker,
    ("DELETE", "/api/v1/petitions/{petition_id}/signature"): Access.worker,
    ("GET", "/api/v1/petitions/{petition_id}/signers"): Access.organizer,
    ("GET", "/api/v1/moderation/queue"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/claim"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/open"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/reject"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/hide"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/restore"): Access.moderator,
    ("GET", "/moderation/petitions/{petition_id}/signatures"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/signatures/preview"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/signatures/void"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/invalidations/preview"): Access.moderator,
    ("POST", "/api/v1/moderation/petitions/{petition_id}/invalidations"): Access.moderator,
    ("GET", "/api/v1/signer-groups"): Access.public,
    ("GET", "/petitions/{petition_id}/report"): Access.public,
    ("GET", "/petitions/{petition_id}/export"): Access.organizer,
    ("POST", "/petitions/{petition_id}/export"): Access.organizer,
    ("GET", "/api/v1/petitions/{petition_id}/tally"): Access.public,
    ("POST", "/api/v1/petitions/{petition_id}/exports"): Access.organizer,
    ("GET", "/api/v1/petitions/{petition_id}/exports"): Access.organizer,
    ("GET", "/api/v1/reports/organization"): Access.public,
    ("GET", "/admin/report"): Access.admin,
    ("GET", "/admin/lists"): Access.admin,
    ("POST", "/admin/lists/{kind}"): Access.admin,
    ("POST", "/admin/lists/{kind}/{item_id}/toggle"): Access.admin,
    ("GET", "/admin/eligibility"): Access.admin,
    ("POST", "/admin/eligibility"): Access.admin,
    ("POST", "/admin/eligibility/clear"): Access.admin,
    ("GET", "/responders"): Access.responder,
    ("GET", "/petitions/{petition_id}/respond"): Access.responder,
    ("POST", "/petitions/{petition_id}/respond"): Access.responder,
    ("POST", "/commitments/{commitment_id}/update"): Access.responder,
    ("POST", "/petitions/{petition_id}/responses/{response_id}/judgement"): Access.organizer,
    ("GET", "/api/v1/petitions/{petition_id}/responses"): Access.public,
    ("POST", "/api/v1/petitions/{petition_id}/responses"): Access.responder,
    ("POST", "/api/v1/commitments/{commitment_id}/updates"): Access.responder,
    ("PUT", "/api/v1/petitions/{petition_id}/responses/{response_id}/judgement"): Access.organizer,
    ("GET", "/api/v1/responders/due"): Access.responder,
    ("GET", "/scoreboard"): Access.public,
    ("GET", "/api/v1/scoreboard"): Access.public,
    ("GET", "/admin/audit"): Access.admin,
    ("GET", "/admin/settings"): Access.admin,
    ("POST", "/admin/settings"): Access.admin,
    ("POST", "/admin/branding"): Access.admin,
    ("GET", "/organization/logo"): Access.public,
    ("GET", "/organization/style.css"): Access.public,
    ("GET", "/api/v1/admin/rules"): Access.admin,
    ("PUT", "/api/v1/admin/rules"): Access.admin,
    ("GET", "/dev/mailbox"): Access.development,
    ("GET", "/dev/mailbox/{message_id}"): Access.development,
    ("GET", "/api/v1/csrf"): Access.public,
    ("POST", "/api/v1/accounts"): Access.public,
    ("POST", "/api/v1/accounts/verification-codes"): Access.public,
    ("POST", "/api/v1/accounts/verify"): Access.public,
    ("POST", "/api/v1/sessions"): Access.public,
    ("DELETE", "/api/v1/sessions/current"): Access.account,
    ("POST", "/api/v1/sign-in-links"): Access.public,
    ("POST", "/api/v1/password-resets"): Access.public,
    ("GET", "/api/v1/me"): Access.account,
    ("GET", "/api/v1/admin/accounts"): Access.admin,
    ("PUT", "/api/v1/admin/accounts/{user_id}/roles/{role}"): Access.admin,
    ("GET", "/petitions/{petition_id}/comments"): Access.public,
    ("POST", "/petitions/{petition_id}/comments"): Access.worker,
    ("GET", "/petitions/{petition_id}/comments/new"): Access.public,
    ("GET", "/petitions/{petition_id}/comments/count"): Access.public,
    ("GET", "/petitions/{petition_id}/live"): Access.public,
    ("GET", "/comments/{comment_id}"): Access.public,
    ("GET", "/comments/{comment_id}/edit"): Access.worker,
    ("POST", "/comments/{comment_id}/edit"): Access.worker,
    ("POST", "/comments/{comment_id}/delete"): Access.worker,
    ("POST", "/comments/{comment_id}/endorse"): Access.worker,
    ("GET", "/comments/{comment_id}/flag"): Access.worker,
    ("POST", "/comments/{comment_id}/flag"): Access.worker,
    ("GET", "/comments/{comment_id}/history"): Access.public,
    ("GET", "/moderation/comments"): Access.moderator,
    ("POST", "/moderation/comments/{comment_id}/hide"): Access.moderator,
    ("POST", "/moderation/comments/{comment_id}/restore"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/comments/lock"): Access.moderator,
    ("POST", "/moderation/petitions/{petition_id}/comments/unlock"): Access.moderator,
    ("POST", "/account/notifications"): Access.worker,
    ("GET", "/api/v1/petitions/{petition_id}/comments"): Access.public,
    ("POST", "/api/v1/petitions/{petition_id}/comments"): Access.worker,
    ("GET", "/api/v1/comments/{comment_id}"): Access.public,
    ("GET", "/api/v1/comments/{comment_id}/replies"): Access.public,
    ("PATCH", "/api/v1/comments/{comment_id}"): Access.worker,
    ("DELETE", "/api/v1/comments/{comment_id}"): Access.worker,
    ("GET", "/api/v1/comments/{comment_id}/history"): Access.public,
    ("POST", "/api/v1/comments/{comment_id}/endorsement"): Access.worker,
    ("DELETE", "/api/v1/comments/{comment_id}/endorsement"): Access.worker,
    ("POST", "/api/v1/comments/{comment_id}/flags"): Access.worker,
    ("GET", "/api/v1/moderation/comments"): Access.moderator,
    ("POST", "/api/v1/moderation/comments/{comment_id}/hide"): Access.moderator,
    ("POST", "/api/v1/moderation/comments/{comment_id}/restore"): Access.moderator,
    ("PUT", "/api/v1/moderation/petitions/{petition_id}/comments-lock"): Access.moderator,
    ("DELETE", "/api/v1/moderation/petitions/{petition_id}/comments-lock"): Access.moderator,
    ("PUT", "/api/v1/me/notifications"): Access.worker,
    ("GET", "/api/v1/anonymous/keys"): Access.public,
    ("GET", "/api/v1/wallet"): Access.worker,
    ("POST", "/api/v1/wallet/tokens"): Access.worker,
    ("POST", "/api/v1/wallet/link"): Access.worker,
    ("GET", "/api/v1/wallet/link"): Access.worker,
    ("DELETE", "/api/v1/wallet/link"): Access.worker,
    ("POST", "/api/v1/wallet/link/answer"): Access.worker,
    ("POST", "/api/v1/wallet/link/sealed"): Access.worker,
    ("POST", "/api/v1/wallet/link/done"): Access.worker,
    ("POST", "/api/v1/wallet/check"): Access.worker,
    ("POST", "/api/v1/anonymous/signatures"): Access.public,
    # Anonymous comments: authorised by the discussion credential in the body, never by a session.
    ("POST", "/api/v1/anonymous/comments"): Access.public,
    ("POST", "/api/v1/anonymous/comments/{comment_id}/edit"): Access.public,
    ("POST", "/api/v1/anonymous/comments/{comment_id}/delete"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/anonymous-signatures"): Access.public,
    # Ballots (issue #25): read as their petition (or, pulse ballots, as open petitions) is; created and closed by a
    # worker whom the service then checks (organizers, or responders and admins); answered without cookies.
    ("POST", "/api/v1/ballots"): Access.worker,
    ("GET", "/api/v1/ballots"): Access.public,
    ("GET", "/api/v1/ballots/{ballot_id}"): Access.public,
    ("GET", "/api/v1/ballots/{ballot_id}/results"): Access.public,
    ("GET", "/api/v1/ballots/{ballot_id}/log/leaves"): Access.public,
    ("GET", "/api/v1/ballots/{ballot_id}/log/checkpoint"): Access.public,
    ("POST", "/api/v1/ballots/{ballot_id}/answers"): Access.public,
    ("POST", "/api/v1/ballots/{ballot_id}/close"): Access.worker,
    ("PATCH", "/api/v1/ballots/{ballot_id}"): Access.worker,
    # Cookie-less (issue #25): a signer credential exchanged for a poll's, and its kept reply fetched by a device.
    ("POST", "/api/v1/ballots/{ballot_id}/exchange"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/signer-replies/{nullifier}"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/anonymity"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log/entries"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log/checkpoints"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log/inclusion"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log/consistency"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log/checkpoint"): Access.public,
    ("GET", "/api/v1/petitions/{petition_id}/log/tile/{tile_path:path}"): Access.public,
    ("POST", "/api/v1/petitions/{petition_id}/log/cosignatures"): Access.public,
    ("DELETE", "/api/v1/admin/accounts/{user_id}/roles/{role}"): Access.admin,
}

# Routes that are not handlers of ours: the OpenAPI document and static files.
FRAMEWORK_ROUTES = {"/openapi.json", "/static"}

# "organizer" is a worker who organizes the petition the request names.
PERSONAS = ["signed_out", "unverified", "worker", "organizer", "responder", "moderator", "admin"]
ALLOWED = {
    Access.public: set(PERSONAS),
    Access.development: set(PERSONAS),  # the suite runs in the test environment; production is tested apart
    Access.account: set(PERSONAS) - {"signed_out"},
    Access.worker: {"worker", "organizer", "responder", "moderator", "admin"},
    Access.organizer: {"organizer"},
    Access.responder: {"responder"},
    Access.pulse: {"responder", "admin"},
    Access.moderator: {"moderator"},
    Access.admin: {"admin"},
}


ROUTES, OTHER_ROUTES = served_routes()


def test_every_route_is_in_the_matrix() -> None:
    assert set(ROUTES) == set(EXPECTED), "add new routes to EXPECTED with the access level they should have"
    assert OTHER_ROUTES == FRAMEWORK_ROUTES


@pytest.mark.parametrize("key", sorted(ROUTES), ids=lambda key: f"{key[0]} {key[1]}")
def test_every_route_declares_exactly_one_access_level(key: tuple[str, str]) -> None:
    declared = declared_access(ROUTES[key])
    assert len(declared) == 1, f"{key} declares {declared or 'no access level'}: use one policy dependency"
    assert declared == {EXPECTED[key]}


# The petition a role acts on is loaded by the dependency that checks the role (app/routes/policy.py), never again by
# the handler: a route of these levels that names a petition in its path takes it from that dependency.
PETITION_FOR_ACCESS = {
    Access.organizer: organized_petition,
    Access.moderator: moderated_petition,
    Access.responder: respondable_petition,
}


@pytest.mark.parametrize(
    "key",
    sorted(key for key in ROUTES if EXPECTED.get(key) in PETITION_FOR_ACCESS and "{petition_id}" in key[1]),
    ids=lambda key: f"{key[0]} {key[1]}",
)
def test_a_route_acting_on_a_petition_takes_it_from_its_access_check(key: tuple[str, str]) -> None:
    handler_takes = {dependency.call for dependency in ROUTES[key].dependant.dependencies}
    assert PETITION_FOR_ACCESS[EXPECTED[key]] in handler_takes, f"{key}: take the petition from the dependency"


# The CSRF seed the matrix's browsers hold.
CSRF_SEED = "a-csrf-seed-for-the-matrix"


@dataclass(frozen=True)
class Cast:
    """What the matrix's requests name, made once per module: each persona's account and session, one open
    petition the organizer persona created (creators may do every organizer action), a comment by each persona
    who can write (authors may edit and delete their own) and one by someone else, and a target account."""

    sessions: dict[str, str]
    petition_id: int
    comment_ids: dict[str, int]
    target_id: int


@pytest.fixture(scope="module")
def cast_connection(engine: Engine) -> Iterator[Connection]:
    """The module's transaction, holding the cast; each test works in a savepoint of it, rolled back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def connection(cast_connection: Connection) -> Iterator[Connection]:
    savepoint = cast_connection.begin_nested()
    try:
        yield cast_connection
    finally:
        savepoint.rollback()


@pytest.fixture(scope="module")
def cast(cast_connection: Connection, database_url: str) -> Cast:
    # A petition takes a dozen rows and two issuing keys: made for each of the thousand cases, the matrix took
    # 50 s; made once, every case still sends its request as the persona, against rows it can change freely.
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    rt = build_test_app(make_settings(database_url), cast_connection, FrozenClock(now)).state.runtime
    with Session(bind=cast_connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as db:
        target = make_user(db, email="target@example.org", password=None)
        users, sessions = {}, {}
        for persona in PERSONAS[1:]:
            roles = (Role(persona),) if persona in ("responder", "moderator", "admin") else ()
            users[persona] = make_user(
                db, email=f"{persona}@example.org", password=None, verified=persona != "unverified", roles=roles
            )
            sessions[persona] = account_sessions.start(db=db, user=users[persona], now=now, days=30)
            db.commit()
        petition = factories.open_petition(db, rt, creator=users["organizer"])
        someone_else = factories.comment(db, rt, petition).id
        comment_ids = {
            persona: factories.comment(db, rt, petition, author=user).id
            for persona, user in users.items()
            if user.is_verified
        }
        return Cast(
            sessions=sessions,
            petition_id=petition.id,
            target_id=target.id,
            comment_ids={persona: comment_ids.get(persona, someone_else) for persona in PERSONAS},
        )


@pytest.mark.one_database
@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda key: f"{key[0]} {key[1]}")
def test_matrix(
    key: tuple[str, str], client: TestClient, cast: Cast, cast_connection: Connection, subtests: pytest.Subtests
) -> None:
    """Every persona asks for the route, each in a subtest of its own (a failure names the persona): in a
    savepoint rolled back after it, with the app's memory and the browser's cookies as a new test finds them.
    A test per route and persona (1,645) spent as long on pytest's fixtures and reports as on the requests."""
    for persona in PERSONAS:
        with subtests.test(persona=persona):
            savepoint = cast_connection.begin_nested()
            try:
                forget_earlier_requests(client.app)  # type: ignore[arg-type]
                client.cookies.clear()
                _assert_access(client, key, persona, cast)
            finally:
                savepoint.rollback()


def _assert_access(client: TestClient, key: tuple[str, str], persona: str, cast: Cast) -> None:
    method, path = key
    if persona != "signed_out":
        client.cookies.set(account_sessions.SESSION_COOKIE, cast.sessions[persona], domain="testserver.local")
    url = path.replace(":path}", "}").format(
        token="t" * 43,
        user_id=cast.target_id,
        role="moderator",
        message_id=1,
        petition_id=cast.petition_id,
        kind="department",
        item_id=1,
        commitment_id=1,
        response_id=1,
        ballot_id=1,
        fmt="csv",
        comment_id=cast.comment_ids[persona],
        tile_path="0/000.p/1",
        nullifier="0" * 64,
    )

    # The CSRF token this browser would be given (GET /api/v1/csrf), worked out as the server does for a seed the
    # browser holds: a request each for 1,900 cases was a sixth of the matrix's time.
    client.cookies.set(CSRF_COOKIE, CSRF_SEED, domain="testserver.local")
    session = cast.sessions.get(persona)
    token = client.app.state.keyring.csrf_token(CSRF_SEED, session)  # type: ignore[attr-defined]
    if method == "GET":
        response = client.get(url)
    elif path.startswith("/api/"):
        response = client.request(method, url, json={}, headers={CSRF_HEADER: token})
    else:
        response = client.post(url, data={CSRF_FIELD: token})

    allowed = persona in ALLOWED[EXPECTED[key]]
    sent_to_sign_in = response.status_code == 303 and response.headers["location"].startswith("/signin?")
    if allowed:
        assert response.status_code not in (401, 403) and not sent_to_sign_in, (
            f"{persona} should reach {method} {path}; got {response.status_code}"
        )
        assert response.status_code < 500
    elif persona == "signed_out":
        assert response.status_code == 401 or (method == "GET" and sent_to_sign_in), response.status_code
    else:
        assert response.status_code == 403, f"{persona} must not reach {method} {path}; got {response.status_code}"


def test_development_pages_do_not_exist_in_production(database_url: str, browser: Browser) -> None:
    app = create_app(
        make_settings(
            database_url,
            environment="production",
            smtp_host="127.0.0.1",
            blind_key_bits=3072,
            anonymous_batch_seconds=300,
            secret_key="p" * 40,
        )
    )
    paths = [path for (method, path), access in EXPECTED.items() if access is Access.development]
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as client:
        for path in paths:
            assert client.get(path.format(message_id=1)).status_code == 404
