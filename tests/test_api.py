"""The JSON API: the same services as the pages, one error shape, cookie sessions with a CSRF header."""

import pytest
from sqlalchemy import select

from app.models.accounts import Role, RoleGrant
from tests.conftest import PASSWORD, Browser, code_from, count_rows, make_user, outbox, sign_in_as

pytestmark = pytest.mark.one_database


def test_sign_up_verify_me_and_sign_out(browser: Browser, db) -> None:
    response = browser.api(
        "POST", "/api/v1/accounts", {"email": "kai@example.com", "display_name": "Kai", "password": PASSWORD}
    )
    assert response.status_code == 202
    assert browser.api("GET", "/api/v1/me").status_code == 401
    code = code_from(outbox(db)[0])
    response = browser.api("POST", "/api/v1/accounts/verify", {"email": "kai@example.com", "code": code})
    assert response.status_code == 200
    assert response.json()["verified"] is True and response.json()["roles"] == ["worker"]
    me = browser.api("GET", "/api/v1/me").json()
    assert me["email"] == "kai@example.com" and me["display_name"] == "Kai"
    assert browser.api("DELETE", "/api/v1/sessions/current").status_code == 204
    assert browser.api("GET", "/api/v1/me").status_code == 401
    response = browser.api("POST", "/api/v1/sessions", {"email": "kai@example.com", "password": PASSWORD})
    assert response.status_code == 200 and browser.api("GET", "/api/v1/me").status_code == 200


def test_api_errors_share_one_shape(browser: Browser, db) -> None:
    make_user(db, email="kai@example.com")
    wrong = browser.api("POST", "/api/v1/sessions", {"email": "kai@example.com", "password": "nope nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "sign_in_required"
    domain = browser.api(
        "POST", "/api/v1/accounts", {"email": "kai@elsewhere.net", "display_name": "Kai", "password": PASSWORD}
    )
    assert domain.status_code == 422
    assert domain.json()["error"]["fields"] == {"email": "Use your work address at example.org or example.com."}
    code = browser.api("POST", "/api/v1/accounts/verify", {"email": "kai@example.com", "code": "123456"})
    assert code.status_code == 422 and "code" in code.json()["error"]["fields"]
    assert count_rows(db, "user_sessions") == 0


def test_admin_grants_and_revokes_roles(browser: Browser, db) -> None:
    admin = make_user(db, email="root@example.org", roles=(Role.admin,))
    worker = make_user(db, email="kai@example.org", name="Kai")
    unverified = make_user(db, email="new@example.org", verified=False)
    sign_in_as(browser, db, admin)

    granted = browser.api("PUT", f"/api/v1/admin/accounts/{worker.id}/roles/moderator")
    assert granted.status_code == 200 and "moderator" in granted.json()["roles"]
    grant = db.scalar(select(RoleGrant).where(RoleGrant.user_id == worker.id))
    assert grant.granted_by_id == admin.id
    again = browser.api("PUT", f"/api/v1/admin/accounts/{worker.id}/roles/moderator")
    assert again.status_code == 409
    assert browser.api("PUT", f"/api/v1/admin/accounts/{worker.id}/roles/worker").status_code == 422
    assert browser.api("PUT", f"/api/v1/admin/accounts/{worker.id}/roles/king").status_code == 422
    assert browser.api("PUT", f"/api/v1/admin/accounts/{unverified.id}/roles/responder").status_code == 409
    assert browser.api("PUT", "/api/v1/admin/accounts/999999/roles/responder").status_code == 404

    revoked = browser.api("DELETE", f"/api/v1/admin/accounts/{worker.id}/roles/moderator")
    assert revoked.status_code == 200 and revoked.json()["roles"] == ["worker"]
    not_a_grant = browser.api("DELETE", f"/api/v1/admin/accounts/{worker.id}/roles/worker")
    assert not_a_grant.status_code == 409 and "Every account is a worker" in not_a_grant.json()["error"]["message"]
    last_admin = browser.api("DELETE", f"/api/v1/admin/accounts/{admin.id}/roles/admin")
    assert last_admin.status_code == 409 and "last admin" in last_admin.json()["error"]["message"]

    listing = browser.api("GET", "/api/v1/admin/accounts?q=kai").json()
    assert [account["email"] for account in listing] == ["kai@example.org"]


def test_admin_page_grants_a_role(browser: Browser, db) -> None:
    admin = make_user(db, email="root@example.org", roles=(Role.admin,))
    worker = make_user(db, email="kai@example.org", name="Kai")
    sign_in_as(browser, db, admin)
    page = browser.get("/admin/users")
    assert "Kai" in page.text and "Grant" in page.text
    response = browser.post(f"/admin/users/{worker.id}/roles", {"role": "responder"})
    assert response.status_code == 303
    assert "Kai is now a responder." in browser.get("/admin/users").text
    response = browser.post(f"/admin/users/{worker.id}/roles", {"role": "emperor"})
    assert "Choose responder, moderator or admin." in browser.get(response.headers["location"]).text
    response = browser.post(f"/admin/users/{worker.id}/roles/responder/revoke")
    assert response.status_code == 303
    db.expire_all()
    assert db.scalar(select(RoleGrant).where(RoleGrant.user_id == worker.id)) is None


def test_openapi_documents_the_api(browser: Browser) -> None:
    schema = browser.get("/openapi.json").json()
    assert "/api/v1/accounts" in schema["paths"] and "/api/v1/me" in schema["paths"]
    assert not any(path.startswith(("/signup", "/admin/users")) for path in schema["paths"]), "pages are not API"
