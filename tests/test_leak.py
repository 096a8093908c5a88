"""The leak test: after a journey through every kind of participation, a dump of every table and the logs.

Asserted, on SQLite and PostgreSQL: no address and no name a signer showed only to organizers appears in any
table or log line (public names appear only where the public sees them); no anonymous signature or anonymous
comment shares a value with any row that names its author's account; no client address is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.orm import Session

from app.core.runtime import Runtime
from app.models.accounts import Role, User, address_lookup
from tests import factories
from tests.conftest import PASSWORD, Browser, LogCapture, code_from, make_user, outbox, sign_in_as
from tests.test_anonymous import anonymous_client, submit  # noqa: F401 (fixture)
from tests.test_anonymous_comments import collect, send

NewBrowser = Callable[[], Browser]
IP_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")

PEOPLE = {
    "organizer": ("olga.oduya@example.org", "Olga Oduya"),
    "public": ("pavel.pryce@example.org", "Pavel Pryce"),
    "organizers_only": ("orla.ostrowski@example.org", "Orla Ostrowski"),
    "anonymous": ("anouk.abara@example.org", "Anouk Abara"),
}


def sign_up(browser: Browser, db: Session, email: str, name: str) -> Browser:
    """The real sign-up: the form, the code from the mail, the verification."""
    assert browser.post("/signup", {"email": email, "display_name": name, "password": PASSWORD}).status_code == 303
    code = code_from(outbox(db, to=email)[-1])
    assert browser.post("/verify", {"email": email, "code": code}).status_code == 303
    return browser


def dump(db: Session, connection: Connection) -> dict[str, list[dict[str, str]]]:
    """Every row of every table, each value as text (bytes read as Latin-1, so plaintext inside shows)."""
    db.expire_all()
    tables: dict[str, list[dict[str, str]]] = {}
    for table in inspect(connection).get_table_names():
        tables[table] = [
            {
                column: (bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview)) else str(value))
                for column, value in row.items()
            }
            for row in db.execute(text(f'SELECT * FROM "{table}"')).mappings()
        ]
    return tables


def test_a_dump_of_every_table_and_the_logs_after_a_full_journey_leaks_nothing(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    connection: Connection,
    server_logs: LogCapture,
    anonymous_client: TestClient,
) -> None:
    browsers = {role: sign_up(new_browser(), db, email, name) for role, (email, name) in PEOPLE.items()}
    accounts = {
        role: db.scalar(select(User.id).where(address_lookup(email))) for role, (email, _name) in PEOPLE.items()
    }
    organizer = db.get(User, accounts["organizer"])
    petition = factories.open_petition(db, rt, creator=organizer, allow_anonymous=True)
    admin = sign_in_as(
        new_browser(), db, make_user(db, email="root.admin@example.org", name="Root Admin", roles=(Role.admin,))
    )

    # Signatures of every visibility, through the pages and the wallet.
    for role, visibility in (("public", "public"), ("organizers_only", "organizers")):
        response = browsers[role].post(f"/petitions/{petition.id}/sign", {"visibility": visibility})
        assert response.status_code == 303, response.text
    held = collect(browsers["anonymous"])  # the signing token and the discussion credential
    assert submit(anonymous_client, petition.id, held[(petition.id, "sign")]).status_code == 202

    # Comments: a named one, an anonymous one and an anonymous reply.
    named = browsers["public"].api(
        "POST",
        f"/api/v1/petitions/{petition.id}/comments",
        {"body": "Signed, and here is why: the recordings are kept for years."},
    )
    assert named.status_code == 201, named.text
    secret_comment = "My team lead reads our screen recordings every Friday."
    anonymous = send(anonymous_client, petition, held[(petition.id, "discuss")], secret_comment)
    assert anonymous.status_code == 202, anonymous.text
    replier = collect(browsers["organizers_only"])[(petition.id, "discuss")]
    reply = send(anonymous_client, petition, replier, "Same in my team.", parent_id=named.json()["id"])
    assert reply.status_code == 202, reply.text

    # The organizer's exports, the admin's reading of accounts and the audit log.
    for kind, fmt in (("signers", "csv"), ("signers", "json"), ("tally", "json")):
        exported = browsers["organizer"].api(
            "POST", f"/api/v1/petitions/{petition.id}/exports", {"kind": kind, "format": fmt}
        )
        assert exported.status_code == 200, exported.text
    assert (
        "Orla Ostrowski"
        in browsers["organizer"]
        .api("POST", f"/api/v1/petitions/{petition.id}/exports", {"kind": "signers", "format": "csv"})
        .text
    )
    assert admin.get("/admin/users?q=orla").status_code == 200
    assert admin.get("/admin/audit").status_code == 200

    tables = dump(db, connection)
    everything = "\n".join(" ".join(row.values()) for rows in tables.values() for row in rows)
    logged = server_logs.text
    assert '"route": "/signup"' in logged, "the journey's requests were logged"

    # No address, in any table or log line: not whole, not its local part.
    for email, _name in [*PEOPLE.values(), ("root.admin@example.org", "")]:
        local = email.split("@")[0]
        assert local not in everything, f"{email} is readable in the database"
        assert local not in logged, f"{email} is in the logs"
    # Names shown only to organizers, and names of anonymous participants: nowhere.
    for role in ("organizers_only", "anonymous"):
        for part in PEOPLE[role][1].split():
            assert part not in everything and part not in logged, f"{part} ({role}) leaked"
    # A public name appears only where the public reads it: the signature's public name.
    for table, rows in tables.items():
        for row in rows:
            for column, value in row.items():
                if "Pryce" in value:
                    assert (table, column) == ("signatures", "public_name"), f"{table}.{column}"
    # No client address anywhere.
    assert not IP_ADDRESS.search(everything) and not IP_ADDRESS.search(logged)
    # (The test client calls itself "testclient"; uvicorn would give 127.0.0.1 or ::1.)
    assert "testclient" not in everything and "testclient" not in logged and "::1" not in logged

    # The anonymous signature and the anonymous comments share no value with any row naming their authors.
    [anonymous_signature] = [row for row in tables["signatures"] if row["visibility"] == "anonymous"]
    assert anonymous_signature["account_id"] == "None"
    anonymous_comments = [row for row in tables["comments"] if row["author_id"] == "None"]
    assert len(anonymous_comments) == 2
    traces = {anonymous_signature[column] for column in ("id", "token_message", "token_signature")}
    for comment in anonymous_comments:
        traces |= {comment[column] for column in ("pseudonym", "author_proof", "body", "body_html")}
    traces = {value for value in traces if len(value) >= 6 and value != "None"}
    author_ids = {str(accounts["anonymous"]), str(accounts["organizers_only"])}
    linked = [
        (table, row)
        for table, rows in tables.items()
        for row in rows
        if any(
            column in ("user_id", "account_id", "author_id", "id")
            and value in author_ids
            and (table == "users" or column != "id")
            for column, value in row.items()
        )
    ]
    assert linked, "the authors' own rows were found"
    for table, row in linked:
        for value in row.values():
            assert not any(trace in value for trace in traces), f"{table} links an author to an anonymous entry"
    assert secret_comment in everything  # the comment itself is stored, with no author
    assert all(row["account_id"] != str(accounts["anonymous"]) for row in tables["signatures"])
