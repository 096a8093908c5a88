"""A full account journey leaves no address, name, password, code, token or session id in the logs."""

import re

from app.models.accounts import Role
from tests.conftest import Browser, LogCapture, code_from, link_from, make_user, outbox, sign_in_as

PASSWORD = "journey password 123"


def test_logs_of_a_full_journey_carry_no_secrets_or_personal_data(
    browser: Browser,
    new_browser,
    db,
    server_logs: LogCapture,
) -> None:
    admin = make_user(db, email="root@example.org", name="Root Admin", roles=(Role.admin,))

    browser.post("/signup", {"email": "lena.marsh@example.org", "display_name": "Lena Marsh", "password": PASSWORD})
    code = code_from(outbox(db)[-1])
    browser.post("/verify", {"email": "lena.marsh@example.org", "code": "000000" if code != "000000" else "111111"})
    browser.post("/verify", {"email": "lena.marsh@example.org", "code": code})
    browser.post("/signout")
    browser.post("/signin", {"email": "lena.marsh@example.org", "password": "wrong password!"})
    browser.post("/signin", {"email": "lena.marsh@example.org", "password": PASSWORD})
    browser.post("/signin/link", {"email": "lena.marsh@example.org"})
    sign_in_link = link_from(outbox(db)[-1])
    browser.get(sign_in_link)
    browser.post(sign_in_link)
    browser.post("/password/forgot", {"email": "lena.marsh@example.org"})
    reset_link = link_from(outbox(db)[-1])
    browser.get(reset_link)
    browser.post(reset_link, {"password": "another long password"})
    browser.get("/account?email=lena.marsh@example.org")
    session_id = browser.client.cookies.get("undersigned_session")
    csrf = browser.csrf()

    admin_browser = sign_in_as(new_browser(), db, admin)
    admin_browser.get("/admin/users?q=lena.marsh")

    logged = server_logs.text
    assert '"route": "/signup"' in logged, "requests are logged"
    secrets = {
        "address": "lena.marsh",
        "name": "Lena Marsh",
        "password": PASSWORD,
        "new password": "another long password",
        "code": code,
        "session id": session_id,
        "csrf token": csrf,
        "sign-in link token": sign_in_link.rsplit("/", 1)[1],
        "reset link token": reset_link.rsplit("/", 1)[1],
    }
    for what, value in secrets.items():
        assert value and value not in logged, f"the {what} appears in the logs"
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", logged), "no client address is logged"
    assert "testclient" not in logged
