"""Accounts through the pages: sign-up, verification, sign-in, links, reset, sign-out, personal address."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.clock import FrozenClock
from app.models.accounts import User, UserSession, address_lookup
from tests.conftest import PASSWORD, Browser, code_from, count_rows, link_from, make_user, outbox, sign_in_as

pytestmark = pytest.mark.one_database

SIGN_UP = {"email": "Nia.Hart@Example.org", "display_name": "Nia Hart", "password": PASSWORD}


def sign_up(browser: Browser, **changes: str):
    return browser.post("/signup", {**SIGN_UP, **changes})


def test_sign_up_verify_sign_out_and_sign_in_again(browser: Browser, db) -> None:
    response = sign_up(browser)
    assert response.status_code == 303 and response.headers["location"] == "/verify"
    page = browser.get("/verify")
    assert "nia.hart@example.org" in page.text, "the address waiting for its code is filled in"
    [mail] = outbox(db, to="nia.hart@example.org")
    assert mail.subject.startswith("Your code for Undersigned")

    response = browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(mail)})
    assert response.status_code == 303
    home = browser.get("/")
    assert "Welcome, Nia Hart" in home.text and "Sign out" in home.text

    user = db.scalar(select(User).where(address_lookup("nia.hart@example.org")))
    assert user.is_verified and user.password_hash.startswith("$argon2")

    assert browser.post("/signout").status_code == 303
    assert "Sign in" in browser.get("/").text
    assert browser.get("/account").status_code == 303, "signed out: the account page asks to sign in"

    response = browser.post("/signin", {"email": "nia.hart@example.org", "password": PASSWORD})
    assert response.status_code == 303
    assert "Your account" in browser.get("/account").text


def test_unknown_domain_is_refused_and_writes_nothing(browser: Browser, db) -> None:
    response = sign_up(browser, email="someone@elsewhere.net")
    assert response.status_code == 422
    assert "Use your work address at example.org or example.com" in response.text
    assert 'aria-describedby="email-hint email-error"' in response.text
    assert 'value="someone@elsewhere.net"' in response.text, "what was typed is kept"
    assert PASSWORD not in response.text, "passwords are never echoed back"
    assert count_rows(db, "users") == 0 and count_rows(db, "outbox_messages") == 0


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("email", "x" * 300 + "@example.org", "Use at most 254 characters."),
        ("display_name", "N" * 10_000, "Use at most 80 characters."),
        ("display_name", "   ", "This is required."),
        ("password", "short", "Use at least 10 characters."),
        ("password", "p" * 5000, "Use at most 256 characters."),
        ("email", "not-an-address", "Enter an email address like name@example.org."),
    ],
)
def test_bad_sign_up_fields_get_a_message_next_to_the_field(
    browser: Browser,
    db,
    field: str,
    value: str,
    message: str,
) -> None:
    response = sign_up(browser, **{field: value})
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text
    assert count_rows(db, "users") == 0 and count_rows(db, "outbox_messages") == 0


def test_missing_csrf_token_is_refused_and_writes_nothing(browser: Browser, db) -> None:
    response = browser.post("/signup", SIGN_UP, csrf=False)
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    response = browser.post("/signup", {**SIGN_UP, "csrf_token": "forged"}, csrf=False)
    assert response.status_code == 403
    assert count_rows(db, "users") == 0 and count_rows(db, "outbox_messages") == 0


def test_wrong_code_is_refused(browser: Browser, db) -> None:
    sign_up(browser)
    [mail] = outbox(db)
    wrong = f"{(int(code_from(mail)) + 1) % 1_000_000:06d}"
    response = browser.post("/verify", {"email": "nia.hart@example.org", "code": wrong})
    assert response.status_code == 422
    assert "That code is not right" in response.text
    assert count_rows(db, "user_sessions") == 0
    assert not db.scalar(select(User)).is_verified
    response = browser.post("/verify", {"email": "nia.hart@example.org", "code": "12ab"})
    assert response.status_code == 422 and "This is not in the expected format." in response.text


def test_expired_code_is_refused_with_a_way_forward(browser: Browser, db, clock: FrozenClock) -> None:
    sign_up(browser)
    [mail] = outbox(db)
    clock.advance(timedelta(minutes=16))
    response = browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(mail)})
    assert response.status_code == 410
    assert "expired" in response.text and "Send me a new code" in response.text
    assert count_rows(db, "user_sessions") == 0

    assert browser.post("/verify/resend", {"email": "nia.hart@example.org"}).status_code == 303
    fresh = outbox(db)[-1]
    assert browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(fresh)}).status_code == 303


def test_only_the_latest_code_works(browser: Browser, db) -> None:
    sign_up(browser)
    browser.post("/verify/resend", {"email": "nia.hart@example.org"})
    first, second = outbox(db)
    assert browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(first)}).status_code in (
        410,
        422,
    )
    assert browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(second)}).status_code == 303


def test_emailed_link_shows_a_button_and_only_the_post_confirms(browser: Browser, db) -> None:
    sign_up(browser)
    link = link_from(outbox(db)[0])
    page = browser.get(link)
    assert page.status_code == 200 and "Confirm my address" in page.text
    browser.get(link)  # a mail scanner opening the link again changes nothing
    assert not db.scalar(select(User)).is_verified
    assert browser.post(link).status_code == 303
    db.expire_all()
    assert db.scalar(select(User)).is_verified
    assert browser.get(link).status_code == 410, "a used link says so"
    assert browser.get("/verify/link/not-a-real-token").status_code == 404


def test_someone_who_signed_up_first_with_your_address_gains_nothing(browser: Browser, new_browser, db) -> None:
    attacker = new_browser()
    attacker.post("/signup", {**SIGN_UP, "password": "attacker-chose-this"})
    sign_up(browser, password="the-real-owner-password")
    owner_mail = outbox(db)[-1]
    browser.post("/verify", {"email": "nia.hart@example.org", "code": code_from(owner_mail)})
    browser.post("/signout")
    assert (
        browser.post("/signin", {"email": "nia.hart@example.org", "password": "attacker-chose-this"}).status_code == 401
    )
    assert (
        browser.post("/signin", {"email": "nia.hart@example.org", "password": "the-real-owner-password"}).status_code
        == 303
    )


def test_signing_up_with_an_existing_address_reveals_nothing(browser: Browser, db) -> None:
    make_user(db, email="nia.hart@example.org", name="Nia Hart")
    response = sign_up(browser)
    assert response.status_code == 303 and response.headers["location"] == "/verify"
    assert count_rows(db, "users") == 1
    [mail] = outbox(db)
    assert mail.subject == "You already have an account at Undersigned"


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org")
    wrong_password = browser.post("/signin", {"email": "ana@example.org", "password": "not the password"})
    no_account = browser.post("/signin", {"email": "nobody@example.org", "password": "not the password"})
    assert wrong_password.status_code == no_account.status_code == 401
    assert "That email address and password do not match" in wrong_password.text
    assert "That email address and password do not match" in no_account.text
    assert count_rows(db, "user_sessions") == 0


def test_sign_in_after_a_page_that_needed_it_returns_there(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org")
    response = browser.get("/account")
    assert response.headers["location"] == "/signin?next=%2Faccount"
    response = browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD, "next": "/account"})
    assert response.headers["location"] == "/account"
    response = browser.post(
        "/signin", {"email": "ana@example.org", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response.headers["location"] == "/", "only same-site paths are followed"


def test_sign_in_rotates_the_session(browser: Browser, db) -> None:
    user = make_user(db, email="ana@example.org")
    sign_in_as(browser, db, user)
    before = browser.client.cookies.get("undersigned_session")
    browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD})
    after = browser.client.cookies.get("undersigned_session")
    assert after and after != before
    assert count_rows(db, "user_sessions") == 1, "the old session is gone"


def test_session_cookie_flags(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org")
    response = browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD})
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("undersigned_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    stored = db.scalar(select(UserSession))
    assert stored.id_digest != cookie.split(";")[0].split("=", 1)[1], "the table keeps only a digest"


def test_sign_in_with_an_emailed_link(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org", password=None)
    assert browser.post("/signin/link", {"email": "ana@example.org"}).status_code == 303
    assert browser.post("/signin/link", {"email": "nobody@example.org"}).status_code == 303, "same answer"
    assert [message.template for message in outbox(db, to="nobody@example.org")] == ["no_account"]
    [mail] = outbox(db, to="ana@example.org")
    link = link_from(mail)
    assert "Sign me in" in browser.get(link).text
    assert count_rows(db, "user_sessions") == 0, "opening the link signs nobody in"
    assert browser.post(link).status_code == 303
    assert "Your account" in browser.get("/account").text
    assert browser.post(link).status_code == 410, "a link works once"


def test_password_reset_signs_out_other_devices(browser: Browser, new_browser, db) -> None:
    user = make_user(db, email="ana@example.org")
    other_device = sign_in_as(new_browser(), db, user)
    assert browser.post("/password/forgot", {"email": "ana@example.org"}).status_code == 303
    link = link_from(outbox(db)[0])
    assert browser.get(link).status_code == 200
    response = browser.post(link, {"password": "short"})
    assert response.status_code == 422 and "Use at least 10 characters." in response.text
    assert browser.post(link, {"password": "a brand new passphrase"}).status_code == 303
    assert other_device.get("/account").status_code == 303, "the other device is signed out"
    browser.post("/signout")
    assert browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD}).status_code == 401
    assert (
        browser.post("/signin", {"email": "ana@example.org", "password": "a brand new passphrase"}).status_code == 303
    )


def test_sign_out_everywhere(browser: Browser, new_browser, db) -> None:
    user = make_user(db, email="ana@example.org")
    sign_in_as(browser, db, user)
    other = sign_in_as(new_browser(), db, user)
    assert browser.post("/signout/everywhere").status_code == 303
    assert other.get("/account").status_code == 303
    assert count_rows(db, "user_sessions") == 0


def test_personal_notification_address(browser: Browser, db) -> None:
    user = make_user(db, email="ana@example.org", name="Ana")
    sign_in_as(browser, db, user)
    response = browser.post("/account/notification-email", {"notification_email": "ana@example.org"})
    assert response.status_code == 422 and "enter a personal one" in response.text
    assert (
        browser.post("/account/notification-email", {"notification_email": "ana.home@mail.example"}).status_code == 303
    )
    [mail] = outbox(db, to="ana.home@mail.example")
    assert (
        browser.post(
            "/account/notification-email/verify", {"code": "000000" if code_from(mail) != "000000" else "111111"}
        ).status_code
        == 422
    )
    assert browser.post("/account/notification-email/verify", {"code": code_from(mail)}).status_code == 303
    db.expire_all()
    assert db.get(User, user.id).notification_address == "ana.home@mail.example"
    assert browser.post("/account/notification-email/remove").status_code == 303
    db.expire_all()
    assert db.get(User, user.id).notification_address == "ana@example.org"


def test_unverified_account_cannot_use_worker_pages(browser: Browser, db) -> None:
    user = make_user(db, email="ana@example.org", verified=False)
    sign_in_as(browser, db, user)
    response = browser.get("/account")
    assert response.status_code == 403 and "confirm your email address first" in response.text


def test_sign_in_attempts_are_rate_limited_per_address(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org")
    statuses = [
        browser.post("/signin", {"email": "ana@example.org", "password": "wrong password"}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    refused = browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD})
    assert refused.status_code == 429 and "Too many attempts" in refused.text
    assert "retry-after" in refused.headers
    assert count_rows(db, "user_sessions") == 0
    other = browser.post("/signin", {"email": "ben@example.org", "password": "wrong password"})
    assert other.status_code == 401, "another address is not affected"


def test_code_requests_are_rate_limited(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org")
    statuses = [browser.post("/password/forgot", {"email": "ana@example.org"}).status_code for _ in range(6)]
    assert statuses == [303] * 5 + [429]
    assert len(outbox(db)) == 5
