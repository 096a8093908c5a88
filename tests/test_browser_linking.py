"""Linking a device in Chromium: two browser contexts are two devices of one worker. A holds the wallet and shows
a code and a QR code; B takes the code (typed, or from the QR code's address) and ends up holding the same
secret. Python plays A once too, so the browser's half and linking_client.py are held to one protocol."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from app.anonymous import derive
from app.clients import linking as protocol
from app.core.b64url import decode as b64d
from app.core.b64url import encode as b64e
from tests import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.browser
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")

READ_SECRET = """async (account) => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("tokens", { keyPath: "id" });
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    return await new Promise((ok) => {
        const r = db.transaction("tokens").objectStore("tokens").get(account + ":wallet");
        r.onsuccess = () => ok(r.result || null); });
}"""

WRITE_SECRET = """async ([account, secret, check]) => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("tokens", { keyPath: "id" });
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    await new Promise((ok, fail) => { const t = db.transaction("tokens", "readwrite");
        t.objectStore("tokens").put({ id: account + ":wallet", account, kind: "secret", secret, check });
        t.oncomplete = ok; t.onerror = () => fail(t.error); });
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "linking.db")
    try:
        yield live
    finally:
        live.stop()


READ_HELD = """async (account) => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("tokens", { keyPath: "id" });
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    const all = await new Promise((ok) => { const r = db.transaction("tokens").objectStore("tokens").getAll();
        r.onsuccess = () => ok(r.result); });
    return all.filter((item) => item.account === account && item.status === "held")
              .map((item) => [item.id, item.message]).sort();
}"""


def account(page: Page) -> str:
    return str(page.locator('meta[name="undersigned-account"]').get_attribute("content"))


def csrf(page: Page) -> str:
    return str(page.locator('meta[name="csrf-token"]').get_attribute("content"))


def with_wallet(person: Any, name: str) -> tuple[Page, dict[str, str]]:
    """Device A: signed in, holding the account's wallet secret (the one the wallet started here, or one put in
    its store and registered), before device B ever signs in."""
    from playwright.sync_api import expect

    page = person(name)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true", timeout=20_000)
    record = page.evaluate(READ_SECRET, account(page))
    if record is None:
        secret = derive.new_secret()
        record = {"secret": b64e(secret), "check": b64e(derive.check(secret))}
        page.evaluate(WRITE_SECRET, [account(page), record["secret"], record["check"]])
        answer = page.request.post(
            "/api/v1/wallet/check", data={"check": record["check"]}, headers={"X-CSRF-Token": csrf(page)}
        )
        assert answer.status in (200, 201), answer.text()
    return page, record


def until_shown(locator: Locator, *pages: Page, seconds: float = 15) -> None:
    """Wait for `locator` on pages that run on the test's clock (`page.clock.install()` before they open the
    linking page): each round runs the polls due within the next two seconds of each page's clock, then gives
    their requests a moment of real time. The devices poll every one or two seconds; waiting for those seconds
    to pass was most of this module's time, with the machine idle."""
    deadline = time.monotonic() + seconds
    while not locator.is_visible():
        assert time.monotonic() < deadline, f"{locator} was not shown within {seconds:g} s"
        for page in pages:
            page.clock.run_for(2000)
        pages[0].wait_for_timeout(50)


def show_code(page: Page) -> str:
    from playwright.sync_api import expect

    page.goto("/wallet/link")
    panel = page.locator("#link-show")
    expect(panel.get_by_role("heading", name="Show a code for your new device")).to_be_visible()
    expect(page.locator("#link-enter")).to_be_hidden()
    panel.get_by_role("button", name="Show a code").click()
    code = panel.locator("[data-link-code]")
    expect(code).to_have_text(CODE)
    expect(panel.locator("[data-link-countdown]")).to_contain_text("The code works for another")
    return str(code.text_content())


def test_a_shows_a_code_b_scans_it_and_holds_the_same_secret(person, server) -> None:
    from playwright.sync_api import expect

    a, record = with_wallet(person, "ben")
    a.set_viewport_size({"width": 360, "height": 800})  # a phone: the code and the QR code fit its width
    a.clock.install()
    code = show_code(a)
    assert a.evaluate("document.documentElement.scrollWidth") <= 360
    # The QR code is drawn here, as inline SVG, of this page's address with the code after '#' only.
    qr = a.locator("#link-show [data-link-qr] svg")
    expect(qr).to_be_visible()
    assert qr.get_attribute("role") == "img" and qr.get_attribute("aria-label")
    url = str(qr.get_attribute("data-url"))
    address, fragment = url.split("#")
    assert address == f"{server.base_url}/wallet/link" and fragment == code.replace("-", "")
    assert a.locator("#link-show path").count() == 1

    b = person("ben")
    b.goto("/")
    assert b.evaluate(READ_SECRET, account(b)) is None
    b.clock.install()
    b.goto(url)  # what the camera opens
    panel = b.locator("#link-enter")
    expect(panel.get_by_role("heading", name="Type the code from your other device")).to_be_visible()
    expect(panel.get_by_label("Code from your other device")).to_have_value(code)
    assert b.evaluate("location.hash") == "" and not b.url.endswith(fragment)  # taken out of the address
    panel.get_by_role("button", name="Link this device").click()
    until_shown(panel.locator("[data-link-received]"), a, b)
    expect(panel.locator("[data-link-received]")).to_contain_text("This device now holds your wallet.")
    expect(panel.get_by_role("link", name="Continue")).to_have_attribute("href", "/wallet")
    until_shown(a.locator("#link-show [data-link-linked]"), a, b)  # (its text is there hidden)
    expect(a.locator("#link-show [data-link-linked]")).to_contain_text("Linked.")

    held = b.evaluate(READ_SECRET, account(b))
    assert (held["secret"], held["check"], held["kind"]) == (record["secret"], record["check"], "secret")
    assert held["account"] == account(a)
    # B rebuilt the credentials A collected at once, from the replies the server kept: the same messages, so the
    # same tokens and the same pseudonym, before B opens any other page.
    a_held = a.evaluate(READ_HELD, account(a))
    assert a_held and b.evaluate(READ_HELD, account(b)) == a_held
    # The session is gone: a new look at it finds nothing.
    gone = b.request.get("/api/v1/wallet/link")
    assert gone.status == 404, gone.text()


def test_a_wrong_code_says_so_and_the_right_one_then_works(person, server) -> None:
    from playwright.sync_api import expect

    a, record = with_wallet(person, "chen")
    a.clock.install()
    code = show_code(a)
    b = person("chen")
    b.clock.install()
    b.goto("/wallet/link")
    panel = b.locator("#link-enter")
    field = panel.get_by_label("Code from your other device")
    alert = b.locator("[data-link-error]")

    field.fill("1234")
    panel.get_by_role("button", name="Link this device").click()
    expect(alert).to_have_text(
        "A linking code is 12 letters and digits, in three groups of four, as your other device shows it."
    )
    expect(alert).to_have_attribute("role", "alert")
    assert field.get_attribute("aria-invalid") == "true"

    answers: list[str] = []
    b.on("request", lambda request: answers.append(request.url) if request.url.endswith("/link/answer") else None)
    wrong = "0000-0000-0000" if code != "0000-0000-0000" else "1111-1111-1111"
    field.fill(wrong)
    panel.get_by_role("button", name="Link this device").click()
    expect(alert).to_contain_text("That is not the code your other device shows: check it and type it again.")
    expect(field).to_be_focused()
    # B checked the offer's proof itself before answering: nothing went to the server (before: it answered first,
    # and the server counted a wrong code).
    assert answers == []

    field.fill(code.lower().replace("-", " "))  # as a person might type it
    panel.get_by_role("button", name="Link this device").click()
    until_shown(panel.locator("[data-link-received]"), a, b)
    expect(alert).to_be_hidden()
    assert b.evaluate(READ_SECRET, account(b))["secret"] == record["secret"]


def test_a_cancelled_code_tells_b_to_start_again(person, server) -> None:
    from playwright.sync_api import expect

    a, _record = with_wallet(person, "dara")
    code = show_code(a)
    a.locator("#link-show").get_by_role("button", name="Cancel").click()
    expect(a.locator("#link-show").get_by_role("button", name="Show a code")).to_be_visible()
    b = person("dara")
    b.goto("/wallet/link")
    b.locator("#link-enter").get_by_label("Code from your other device").fill(code)
    b.locator("#link-enter").get_by_role("button", name="Link this device").click()
    expect(b.locator("[data-link-error]")).to_contain_text("No device is showing a linking code for your account")


def test_python_as_device_a_links_a_browser(person, server) -> None:
    """The command-line client's half (linking_client.py) shows the code; the browser's half takes it."""

    _holder, record = with_wallet(person, "ana")
    secret = b64d(record["secret"])
    b = person("ana")
    b.goto("/")
    token = csrf(b)

    def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        response = b.request.fetch(path, method=method, data=body, headers={"X-CSRF-Token": token})
        return response.status, (response.json() if response.body() else None)

    made = protocol.Offer()
    assert call("POST", "/api/v1/wallet/link", made.body())[0] == 201
    b.clock.install()
    b.goto("/wallet/link")
    b.locator("#link-enter").get_by_label("Code from your other device").fill(protocol.display(made.code))
    b.locator("#link-enter").get_by_role("button", name="Link this device").click()
    deadline = time.monotonic() + 15
    while (session := call("GET", "/api/v1/wallet/link")[1])["state"] != "answered":
        assert time.monotonic() < deadline, session
        time.sleep(0.2)
    box = made.seal(secret, answer_key=b64d(session["answer_key"]), answer_proof=b64d(session["answer_proof"]))
    assert call("POST", "/api/v1/wallet/link/sealed", {"sealed": b64e(box)})[0] == 200
    until_shown(b.locator("[data-link-received]"), b)
    assert b.evaluate(READ_SECRET, account(b))["secret"] == b64e(secret)


def test_without_indexeddb_the_page_says_so(chromium, server) -> None:
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    context = chromium.new_context(base_url=server.base_url)
    try:
        context.add_init_script("Object.defineProperty(window, 'indexedDB', { value: undefined });")
        page = context.new_page()
        page.goto("/signin")
        page.locator("main").get_by_label("Work email address").fill("riley@example.org")
        page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        page.goto("/wallet/link")
        expect(page.get_by_role("heading", name="This browser cannot keep a wallet")).to_be_visible()
        expect(page.locator("#link-show")).to_be_hidden()
        expect(page.locator("#link-enter")).to_be_hidden()
    finally:
        context.close()


def test_python_as_device_b_opens_what_the_browser_seals(person, server) -> None:
    """The other way round: the browser shows the code and seals; the command-line client's half opens it."""
    from playwright.sync_api import expect

    a, record = with_wallet(person, "morgan")  # each test its own account: a wallet, once registered, stays
    a.clock.install()
    code = show_code(a)
    token = csrf(a)

    def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        response = a.request.fetch(path, method=method, data=body, headers={"X-CSRF-Token": token})
        return response.status, (response.json() if response.body() else None)

    def sleep(_seconds: float) -> None:  # B's wait between its polls: A's clock moves on meanwhile, so A seals
        a.clock.run_for(2000)
        time.sleep(0.05)

    secret = protocol.answer(call, code, sleep=sleep)  # checks wallet_check itself
    assert b64e(secret) == record["secret"]
    until_shown(a.locator("#link-show [data-link-linked]"), a)  # (its text is there hidden)
    expect(a.locator("#link-show [data-link-linked]")).to_contain_text("Linked.")


def stall(page: Page, path: str) -> None:
    """A server that reports a session that never expires, on `path`'s answers (the reviewer's stall)."""

    def rewrite(route: Any) -> None:
        response = route.fetch()
        body = response.json() if response.body() else None
        if isinstance(body, dict) and "expires_in" in body:
            body["expires_in"] = 10**9
        route.fulfill(response=response, json=body) if body is not None else route.fulfill(response=response)

    page.route(re.compile(re.escape(path) + "$"), rewrite)


def test_a_gives_up_by_its_own_clock_and_says_linked_only_when_b_collected(person, server, tmp_path) -> None:
    """Device A in the browser: (1) a server reporting a session that never ends is not believed: A stops at
    10 minutes by its own clock and cancels the code; (2) a session that vanishes after A sealed is not "Linked."
    (before: any 404 after sealing was); (3) the command-line client, typing the code at a hidden prompt, is B,
    and A says "Linked." on the server's word that it collected the wallet."""
    from playwright.sync_api import expect
    from typer.testing import CliRunner

    from app.cli import cli
    from app.clients import anonymous as client
    from app.demo import DEMO_PASSWORD

    a = person("admin")
    a.goto("/")
    a.clock.install()
    a.reload()
    a, record = with_wallet(lambda _name: a, "admin")
    token = csrf(a)
    panel = a.locator("#link-show")
    alert = a.locator("[data-link-error]")

    def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        response = a.request.fetch(path, method=method, data=body, headers={"X-CSRF-Token": token})
        return response.status, (response.json() if response.body() else None)

    # (1) The stalling server.
    stall(a, "/api/v1/wallet/link")
    cancelled: list[str] = []
    a.on("request", lambda request: cancelled.append(request.method) if request.method == "DELETE" else None)
    show_code(a)
    a.clock.run_for("10:05")
    expect(alert).to_have_text("The code expired before a new device used it. Press Show a code for a new one.")
    assert "DELETE" in cancelled and call("GET", "/api/v1/wallet/link")[0] == 404
    a.unroute_all()

    # (2) B answers, A seals, the session then vanishes without B collecting.
    code = show_code(a)
    session = call("GET", "/api/v1/wallet/link")[1]
    made = protocol.Answer(code=code, offer_key=b64d(session["offer_key"]))
    assert call("POST", "/api/v1/wallet/link/answer", made.body())[0] == 200
    deadline = time.monotonic() + 15
    while call("GET", "/api/v1/wallet/link")[1]["state"] != "sealed":
        a.clock.run_for(2000)
        assert time.monotonic() < deadline
    assert call("DELETE", "/api/v1/wallet/link")[0] == 204
    a.clock.run_for(3000)
    expect(alert).to_have_text(
        "The linking session closed before your new device said it had the wallet. If it "
        "does not hold your wallet now, show a new code."
    )
    expect(panel.locator("[data-link-linked]")).to_be_hidden()

    # (3) The command-line client as B: the code is asked for, not given on the command line, and not echoed.
    code = show_code(a)
    url = server.base_url + "/wallet"
    wallet_file = tmp_path / "wallet.json"
    signed_in = ["--email", "admin@example.org", "--password", DEMO_PASSWORD, "--wallet", str(wallet_file)]
    refused = CliRunner().invoke(cli, ["client", "wallet", "link", code, url, *signed_in])
    assert refused.exit_code == 2, refused.output  # a code on the command line is not taken
    outcome: dict[str, Any] = {}

    def terminal() -> None:
        outcome["result"] = CliRunner().invoke(
            cli, ["client", "wallet", "link", url, *signed_in], input=code.lower() + "\n", catch_exceptions=False
        )

    import threading

    thread = threading.Thread(target=terminal)
    thread.start()
    deadline = time.monotonic() + 60
    while thread.is_alive() and time.monotonic() < deadline:
        a.clock.run_for(1000)
        time.sleep(0.2)
    thread.join(1)
    result = outcome["result"]
    assert result.exit_code == 0, result.output
    assert code not in result.output and code.lower() not in result.output and "Your wallet for" in result.output
    assert client.wallet_secret(client.load_wallet(wallet_file), server.base_url, "admin@example.org") == b64d(
        record["secret"]
    )
    for _ in range(10):
        a.clock.run_for(1000)
    expect(panel.locator("[data-link-linked]")).to_be_visible()
    expect(panel.locator("[data-link-linked]")).to_contain_text("Linked.")


def test_b_gives_up_ten_minutes_after_answering_by_its_own_clock(person, server) -> None:
    """Device B in the browser: a server reporting a session that never ends, and never sealing, is not waited on
    past 10 minutes after B answered (before: B polled for as long as the server kept the session)."""
    from playwright.sync_api import expect

    first = person("riley")
    first.goto("/")
    token = csrf(first)

    def call(method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        response = first.request.fetch(path, method=method, data=body, headers={"X-CSRF-Token": token})
        return response.status, (response.json() if response.body() else None)

    if call("GET", "/api/v1/wallet")[1]["wallet_check"] is None:  # a wallet for the account, on no browser here
        assert call("POST", "/api/v1/wallet/check", {"check": b64e(derive.check(derive.new_secret()))})[0] in (200, 201)
    made = protocol.Offer()  # Python is A, and never seals
    assert call("POST", "/api/v1/wallet/link", made.body())[0] == 201
    b = person("riley")
    b.goto("/")
    b.clock.install()
    b.goto("/wallet/link")
    stall(b, "/api/v1/wallet/link/answer")
    stall(b, "/api/v1/wallet/link")
    panel = b.locator("#link-enter")
    panel.get_by_label("Code from your other device").fill(protocol.display(made.code))
    panel.get_by_role("button", name="Link this device").click()
    expect(panel.locator("[data-link-receiving]")).to_be_visible()
    assert call("GET", "/api/v1/wallet/link")[1]["state"] == "answered"
    b.clock.run_for("10:05")
    expect(b.locator("[data-link-error]")).to_have_text(
        "Your other device did not send the wallet within 10 minutes of this device answering its code: show a new "
        "code there and start again."
    )
