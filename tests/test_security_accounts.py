"""Issue #21's account findings, each written as the attacker's method: timing, links after a reset, locking a
colleague out, password spraying, line breaks in names and titles, and the co-organizer form as an oracle."""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from statistics import median, quantiles
from types import SimpleNamespace

import pytest
from fastapi import FastAPI

from app.core import security
from app.core.clock import FrozenClock
from app.core.security import hash_password
from app.mail import service as mail
from app.models.accounts import User
from tests import factories
from tests.conftest import (
    PASSWORD,
    Browser,
    build_test_app,
    count_rows,
    link_from,
    make_settings,
    make_user,
    outbox,
    sign_in_as,
)

pytestmark = pytest.mark.one_database

SAMPLES = 16


def overlap(first: list[float], second: list[float]) -> float:
    """The chance that a time from `first` exceeds one from `second` (ties count half): 0.5 when the two
    distributions are alike, 0 or 1 when one request tells them apart (the area under the ROC curve)."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in first for b in second)
    return wins / (len(first) * len(second))


def middle_half(times: list[float]) -> tuple[float, float]:
    quartiles = quantiles(times, n=4)
    return quartiles[0], quartiles[2]


# How far apart the two medians may be when the middle halves do not overlap: the quickest of three tries makes
# each distribution narrow (a tenth of a millisecond), so a few percent of steady difference, such as an INSERT
# against an UPDATE that matches nothing, separates them without telling anything through a network's jitter.
# The leaks this guards against were 2x and more (a mailed link against none, a skipped password hash).
MEDIAN_TOLERANCE = 0.15


def assert_overlap(name: str, known_times: list[float], unknown_times: list[float]) -> None:
    """The middle halves of the two distributions overlap, or their medians are within MEDIAN_TOLERANCE of each
    other: a busy machine's pauses (the tails) cannot decide it, and no absolute time is assumed."""
    (known_low, known_high), (unknown_low, unknown_high) = middle_half(known_times), middle_half(unknown_times)
    known_median, unknown_median = median(known_times), median(unknown_times)
    report = (
        f"{name}: existing {known_low * 1000:.2f}-{known_high * 1000:.2f} ms (middle half), unknown "
        f"{unknown_low * 1000:.2f}-{unknown_high * 1000:.2f} ms, "
        f"P(existing slower) = {overlap(known_times, unknown_times):.2f}"
    )
    print(report)
    overlapping = known_low <= unknown_high and unknown_low <= known_high
    close = abs(known_median - unknown_median) <= MEDIAN_TOLERANCE * min(known_median, unknown_median)
    assert overlapping or close, f"the distributions do not overlap: {report}"


def existing_accounts(db, count: int, prefix: str) -> list[str]:
    """Confirmed accounts sharing one real (production-cost) password hash, so arranging them is quick."""
    password_hash = hash_password(PASSWORD)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    addresses = [f"{prefix}{i}@example.org" for i in range(count)]
    db.add_all(
        [
            User(
                email=address,
                display_name=f"Colleague {i}",
                password_hash=password_hash,
                email_verified_at=now,
                created_at=now,
                roles=[],
            )
            for i, address in enumerate(addresses)
        ]
    )
    db.commit()
    return addresses


def timed(browser: Browser, url: str, token: str, data: dict[str, str]) -> float:
    started = time.perf_counter()
    response = browser.client.post(url, data={**data, "csrf_token": token})
    elapsed = time.perf_counter() - started
    assert response.status_code == 303, response.text
    return elapsed


def interleaved(
    browser: Browser, url: str, existing: list[str], unknown: list[str], fields: Callable[[str], dict[str, str]]
) -> tuple[list[float], list[float]]:
    """Time requests for existing and unknown addresses in turn, alternating which goes first."""
    token = browser.csrf()
    known_times: list[float] = []
    unknown_times: list[float] = []
    for index, (known, stranger) in enumerate(zip(existing, unknown, strict=True)):
        pair = [(known_times, known), (unknown_times, stranger)]
        for times, address in pair if index % 2 else reversed(pair):
            times.append(timed(browser, url, token, fields(address)))
    return known_times, unknown_times


# 1. Timing tells whether an address has an account ----------------------------------------------------------


@pytest.fixture
def production_password_cost() -> Iterator[None]:
    """Production's Argon2 cost for one test: the suite hashes at the algorithm's floor (tests/conftest.py)."""
    security.use_password_cost(security.ARGON2_COST)
    try:
        yield
    finally:
        security.use_password_cost(security.ARGON2_TEST_COST)


def test_sign_up_takes_as_long_for_an_address_with_an_account_as_without(
    browser: Browser, db, production_password_cost: None
) -> None:
    """The attacker times one sign-up per address against a server that hashes at production's cost, so the
    hashing that sign-up once skipped for existing accounts counts as it would there. (At the suite's floor cost
    the remaining difference shows: creating the account and its code is a few more writes than queueing the
    "you already have an account" mail, about 1-2 ms on PostgreSQL; see the request-for-a-link test below, which
    times the service itself.)"""
    url = "/signup"
    existing = existing_accounts(db, SAMPLES, "known")
    unknown = [f"stranger{i}@example.org" for i in range(SAMPLES)]
    browser.client.post("/password/forgot", data={"email": "warmup@example.org", "csrf_token": browser.csrf()})

    known_times, unknown_times = interleaved(
        browser,
        url,
        existing,
        unknown,
        lambda address: {"email": address, "display_name": "Someone", "password": "a long enough passphrase"},
    )

    assert_overlap(url, known_times, unknown_times)


@pytest.mark.parametrize("ask", ["request_password_reset", "request_sign_in_link"])
def test_the_work_behind_a_request_for_a_link_is_the_same_with_or_without_an_account(db, rt, ask: str) -> None:
    """The same, timed inside the server: a loaded test machine's noise hides a few milliseconds of writes and
    mail that production's commits make plain (a mailed link took twice as long as none)."""
    from app.accounts import service as accounts

    request = getattr(accounts, ask)
    takes_browser = "browser" in inspect.signature(request).parameters
    existing = existing_accounts(db, SAMPLES * 2, "known")
    unknown = [f"stranger{i}@example.org" for i in range(SAMPLES * 2)]
    known_times: list[float] = []
    unknown_times: list[float] = []
    for index, (known, stranger) in enumerate(zip(existing, unknown, strict=True)):
        pair = [(known_times, known), (unknown_times, stranger)]
        for times, address in pair if index % 2 else reversed(pair):
            tries = []
            for _ in range(3):  # the quickest of three: a busy machine's pauses only ever add time
                started = time.perf_counter()
                request(db=db, rt=rt, raw_email=address, **({"browser": "timing"} if takes_browser else {}))
                db.commit()
                tries.append(time.perf_counter() - started)
            times.append(min(tries))

    assert_overlap(ask, known_times[2:], unknown_times[2:])  # the first of each compiled its mail template


# 4. A password reset revokes every outstanding link and code --------------------------------------------------


def test_a_sign_in_link_asked_for_before_a_password_reset_no_longer_works_after_it(
    browser: Browser,
    new_browser,
    db,
) -> None:
    make_user(db, email="ana@example.org")
    intruder = new_browser()
    assert intruder.post("/signin/link", {"email": "ana@example.org"}).status_code == 303
    old_link = link_from(outbox(db, to="ana@example.org")[-1])

    assert browser.post("/password/forgot", {"email": "ana@example.org"}).status_code == 303
    reset = link_from(outbox(db, to="ana@example.org")[-1])
    assert browser.post(reset, {"password": "a brand new passphrase"}).status_code == 303

    assert intruder.post(old_link).status_code == 410, "the reset promised to sign out every other device"
    assert "Sign in" in intruder.get("/").text


# 6. Locking a colleague out -----------------------------------------------------------------------------------


def test_eleven_wrong_passwords_from_a_stranger_do_not_lock_the_owner_out(browser: Browser, new_browser, db) -> None:
    make_user(db, email="ana@example.org")
    stranger = new_browser()
    statuses = [
        stranger.post("/signin", {"email": "ana@example.org", "password": "a guess"}).status_code for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429], "the stranger's browser is stopped"

    assert browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD}).status_code == 303
    notices = [m for m in outbox(db, to="ana@example.org") if m.template == "sign_in_failures"]
    assert len(notices) == 1, "the owner is told"


@pytest.fixture
def strict_app(database_url: str, connection, clock: FrozenClock) -> FastAPI:
    """Low ceilings, so the attack fits in a test: 20 wrong passwords an hour per address, 10 a minute for all."""
    settings = make_settings(
        database_url,
        rate_limit_sign_in_address="20/hour",
        sign_in_failure_budget="10/minute",
        rate_limit_code_request_address="12/hour",
        sign_in_slowdown_seconds=1.5,
    )
    return build_test_app(settings, connection, clock)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from app.accounts import limits

    waited: list[float] = []
    monkeypatch.setattr(limits, "pause", waited.append)
    return waited


def browsers(app: FastAPI):
    from fastapi.testclient import TestClient

    opened: list[TestClient] = []

    def open_browser() -> Browser:
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        opened.append(client)
        return Browser(client)

    return open_browser, opened


def test_a_stranger_with_a_fresh_browser_for_each_guess_cannot_keep_the_owner_out(
    strict_app: FastAPI,
    db,
    pauses: list[float],
) -> None:
    make_user(db, email="ana@example.org")
    open_browser, opened = browsers(strict_app)
    guesses = [
        open_browser().post("/signin", {"email": "ana@example.org", "password": f"guess {i}"}).status_code
        for i in range(30)
    ]
    assert set(guesses) == {401}, "no browser of the stranger's guessed more than once"
    assert pauses, "past the address's ceiling every attempt waits"

    pauses.clear()
    owner = open_browser()
    assert owner.post("/signin", {"email": "ana@example.org", "password": PASSWORD}).status_code == 303, (
        "a correct password passes the address's ceiling"
    )
    assert pauses == [1.5], "after a wait"
    notices = [m for m in outbox(db, to="ana@example.org") if m.template == "sign_in_failures"]
    assert len(notices) == 1, "the owner is mailed once in the hour, not once per guess"
    for client in opened:
        client.close()


def test_password_spraying_slows_every_sign_in_without_counting_per_client_address(
    strict_app: FastAPI,
    db,
    pauses: list[float],
) -> None:
    """One password against many addresses, each guess from a new browser: no address and no browser sees more
    than one failure, so only a budget shared by all sign-ins notices."""
    existing_accounts(db, 14, "sprayed")
    make_user(db, email="ana@example.org")
    open_browser, opened = browsers(strict_app)
    for i in range(14):
        assert (
            open_browser().post("/signin", {"email": f"sprayed{i}@example.org", "password": "Winter2026!"}).status_code
            == 401
        )
    assert len(pauses) >= 3, "once failures pass the budget, attempts wait"

    pauses.clear()
    assert open_browser().post("/signin", {"email": "ana@example.org", "password": PASSWORD}).status_code == 303
    assert pauses == [1.5], "everyone's sign-in waits during the spike, and still succeeds"
    for client in opened:
        client.close()


@pytest.mark.parametrize("url", ["/password/forgot", "/signin/link"])
def test_a_stranger_asking_for_resets_or_links_does_not_block_the_owner(
    browser: Browser,
    new_browser,
    db,
    url: str,
) -> None:
    make_user(db, email="ana@example.org")
    stranger = new_browser()
    statuses = [stranger.post(url, {"email": "ana@example.org"}).status_code for _ in range(6)]
    assert statuses == [303] * 5 + [429]
    before = len(outbox(db, to="ana@example.org"))

    assert browser.post(url, {"email": "ana@example.org"}).status_code == 303
    assert len(outbox(db, to="ana@example.org")) == before + 1, "the owner's own request is mailed"
    assert browser.get(link_from(outbox(db, to="ana@example.org")[-1])).status_code == 200, "and its link works"


def test_the_address_keeps_a_ceiling_on_how_much_mail_strangers_can_send_it(strict_app: FastAPI, db) -> None:
    make_user(db, email="ana@example.org")
    open_browser, opened = browsers(strict_app)
    statuses = [open_browser().post("/password/forgot", {"email": "ana@example.org"}).status_code for _ in range(14)]
    assert statuses == [303] * 12 + [429] * 2
    assert len(outbox(db, to="ana@example.org")) == 12
    for client in opened:
        client.close()


# 8. Line breaks in names and titles ---------------------------------------------------------------------------

INJECTED = [
    "Zoe\nYour password expired: https://evil.example",
    "Zoe\rBcc: all@example.org",
    "Zoe\tTab",
    "Zoe\u2028Line",
    "Zoe\x07Bell",
]


@pytest.mark.parametrize("name", INJECTED)
def test_a_display_name_with_control_characters_is_refused_at_sign_up(browser: Browser, db, name: str) -> None:
    response = browser.post("/signup", {"email": "zoe@example.org", "display_name": name, "password": PASSWORD})
    assert response.status_code == 422
    assert "no line breaks, tabs or other control characters" in response.text
    api = browser.api(
        "POST", "/api/v1/accounts", {"email": "zoe@example.org", "display_name": name, "password": PASSWORD}
    )
    assert api.status_code == 422
    assert "control characters" in api.json()["error"]["fields"]["display_name"]
    assert count_rows(db, "users") == 0 and count_rows(db, "outbox_messages") == 0


@pytest.mark.parametrize("title", INJECTED[:3])
def test_a_petition_title_with_control_characters_is_refused(browser: Browser, db, title: str) -> None:
    sign_in_as(browser, db, factories.worker(db))
    before = count_rows(db, "petitions")
    api = browser.api(
        "POST", "/api/v1/petitions", {"title": title, "ask": "Ask.", "background": "Why.", "category": "other"}
    )
    assert api.status_code == 422 and "control characters" in api.json()["error"]["fields"]["title"]
    page = browser.post("/petitions/new", {"title": title, "ask": "Ask."})
    assert page.status_code == 422 and "no line breaks, tabs or other control characters" in page.text
    assert count_rows(db, "petitions") == before


def test_mail_shows_control_characters_of_older_names_and_titles_escaped(rt, db) -> None:
    """Rows written before names and titles refused them: the reply notification took the attacker's lines."""
    attacker = "Zoe\nIT Support: your password expired, reset it at https://evil.example"
    user = SimpleNamespace(display_name="Ana\r\nBcc: everyone@example.org")
    petition = SimpleNamespace(title="Fair rotas\nSubject: urgent", id=1)
    reply = SimpleNamespace(body="First line of the reply.\nSecond line.")
    message = mail.queue(
        db=db,
        templates=rt.templates,
        to_address="ana@example.org",
        template="comment_reply",
        now=rt.clock.now(),
        context={
            "replier": attacker,
            "user": user,
            "petition": petition,
            "reply": reply,
            "comment_url": "http://testserver/comments/1",
            "account_url": "http://testserver/account",
        },
        unsubscribe_url="http://testserver/unsubscribe/token",
    )
    subject, body = message.subject, message.body_text

    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Zoe\\nIT Support")
    lines = body.splitlines()
    assert not any(line.startswith(("IT Support", "Bcc:", "Subject:")) for line in lines), body
    assert "Hello Ana\\r\\nBcc: everyone@example.org," in body
    assert "First line of the reply.\nSecond line." in body, "what people wrote at length keeps its lines"


# 9. The co-organizer form as an oracle ------------------------------------------------------------------------


def test_the_co_organizer_form_answers_the_same_whether_or_not_the_address_has_an_account(
    browser: Browser,
    db,
    rt,
) -> None:
    make_user(db, email="cory@example.org", name="Cory Colleague")
    make_user(db, email="unconfirmed@example.org", name="Una Unconfirmed", password=None, verified=False)
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    addresses = ["cory@example.org", "unconfirmed@example.org", "nobody@example.org"]

    api = [
        browser.api("POST", f"/api/v1/petitions/{petition.id}/organizers", {"email": address}) for address in addresses
    ]
    pages, flashes = [], []
    for address in addresses:
        pages.append(browser.post(f"/petitions/{petition.id}/organizers", {"email": address}))
        flashes.append(browser.get(pages[-1].headers["location"]))

    assert len({(response.status_code, response.content) for response in api}) == 1, "one answer for all"
    assert len({page.headers["location"] for page in pages}) == 1
    assert all("We emailed that address" in flash.text for flash in flashes)
    assert "Cory Colleague" not in flashes[0].text, "nobody is listed as an organizer before accepting"
    assert [m.template for m in outbox(db, to="cory@example.org")] == ["organizer_invited"] * 2
    for address in addresses[1:]:
        assert [m.template for m in outbox(db, to=address)] == ["organizer_join_first"] * 2


def test_an_invitation_to_organize_works_only_for_the_account_it_was_sent_to(
    browser: Browser,
    new_browser,
    db,
    rt,
) -> None:
    cory = make_user(db, email="cory@example.org", name="Cory Colleague")
    other = make_user(db, email="other@example.org", name="Someone Else")
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    sign_in_as(browser, db, creator)
    assert browser.post(f"/petitions/{petition.id}/organizers", {"email": "cory@example.org"}).status_code == 303
    [invitation] = outbox(db, to="cory@example.org")
    link = re.search(r"http://testserver(/\S+/organizers/invitations/\S+)", invitation.body_text)
    assert link is not None
    accept = link.group(1)

    assert sign_in_as(new_browser(), db, other).post(accept).status_code == 403
    assert sign_in_as(new_browser(), db, cory).post(accept.replace(f"/{petition.id}/", "/999999/")).status_code == 404
    invited = sign_in_as(new_browser(), db, cory)
    assert invited.post(accept[:-3] + "xyz").status_code == 404, "a changed token is refused"
    assert invited.post(accept).status_code == 303
    assert "Cory Colleague" in browser.get(f"/petitions/{petition.id}").text
    assert invited.post(accept).status_code == 409, "once"


# 10. CSRF hardening -------------------------------------------------------------------------------------------


def test_a_state_changing_request_sent_from_another_site_is_refused(browser: Browser, db) -> None:
    sign_in_as(browser, db, make_user(db, email="ana@example.org"))
    forged = browser.post("/signout", headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403, "a valid token does not make a cross-site request acceptable"
    assert browser.get("/account").status_code == 200, "still signed in"
    assert browser.post("/signout", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 303


def test_a_seed_planted_in_a_signed_in_browser_does_not_make_the_planter_s_token_valid(
    browser: Browser,
    new_browser,
    db,
) -> None:
    """The attacker reads the token of their own seed, plants that seed in the victim's browser (a cookie set from
    a sibling site), and has the victim's browser send a form with the token."""
    attacker = new_browser()
    attacker.get("/")
    planted_seed, planted_token = attacker.client.cookies.get("undersigned_csrf"), attacker.csrf()
    sign_in_as(browser, db, make_user(db, email="ana@example.org"))
    browser.client.cookies.set("undersigned_csrf", planted_seed, domain="testserver.local")

    forged = browser.client.post("/signout/everywhere", data={"csrf_token": planted_token})
    assert forged.status_code == 403
    assert browser.get("/account").status_code == 200


def test_signing_in_gives_the_browser_a_new_csrf_seed(browser: Browser, db) -> None:
    make_user(db, email="ana@example.org")
    browser.get("/signin")
    before = browser.client.cookies.get("undersigned_csrf")
    response = browser.post("/signin", {"email": "ana@example.org", "password": PASSWORD})
    assert response.status_code == 303
    after = browser.client.cookies.get("undersigned_csrf")
    assert after and after != before
    assert browser.post("/account/notification-email/remove").status_code == 303, "the new seed's token works"


def test_over_https_the_seed_cookie_has_the_host_prefix(app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        page = client.get("/signin")
        [seed_cookie] = [
            value for name, value in page.headers.multi_items() if name == "set-cookie" and "undersigned_csrf=" in value
        ]
        assert seed_cookie.startswith("__Host-undersigned_csrf=")
        assert "Secure" in seed_cookie and "Path=/" in seed_cookie
        token = client.get("/api/v1/csrf").json()["csrf_token"]
        assert client.post("/signin/link", data={"email": "ana@example.org", "csrf_token": token}).status_code == 303
