"""One wallet on every device (issue #19), in Chromium: the browser derives what Python derives, and a worker's
second device, given the recovery code, rebuilds and unblinds every credential the first one collected.

The derivation test loads assets/src/derive.js itself as an ES module (it imports nothing, and the bundle is
esbuild's copy of it) into a page the test serves through Playwright's router: nothing in the shipped bundle
exposes its functions for tests. The journey drives the bundle the pages load, with two browser contexts as two
devices of one account, and checks in Python that what the browser keeps is what the secret derives."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from app.anonymous import derive
from app.anonymous.service import decode
from app.core import blindrsa
from tests import live_server
from tests.conftest import project_root

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# GET /api/v1/wallet, with or without the purposes the browser names (assets/src/sync.js's WALLET_PATH).
WALLET_STATE = re.compile(r"/api/v1/wallet(\?[^/]*)?$")
pytestmark = [pytest.mark.browser, pytest.mark.one_database]

VECTOR = json.loads((Path(__file__).parent / "data" / "wallet" / "derive_vector.json").read_text())
DERIVE_JS = project_root() / "assets" / "src" / "derive.js"
ORIGIN = "http://127.0.0.1:9"  # never contacted: every request to it is answered by the test's router


@pytest.fixture
def derive_page(chromium: Browser) -> Iterator[Page]:
    """A blank page on a secure origin (127.0.0.1) with derive.js imported as `window.derive`."""
    context = chromium.new_context()
    page = context.new_page()
    page.route(
        f"{ORIGIN}/derive.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=DERIVE_JS.read_text()),
    )
    page.route(
        f"{ORIGIN}/",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=(
                '<!doctype html><title>derive</title><script type="module">'
                'import * as derive from "/derive.js"; window.derive = derive;'
                'document.documentElement.dataset.ready = "true";</script>'
            ),
        ),
    )
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("document.documentElement.dataset.ready === 'true'")
    try:
        yield page
    finally:
        context.close()


HEX = "(bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')"
FROM_HEX = "(hex) => Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16))"


@pytest.mark.parametrize("expected", VECTOR["credentials"], ids=lambda item: item["purpose"])
def test_the_browser_derives_the_vector_byte_for_byte(derive_page: Page, expected: dict[str, str]) -> None:
    spki = list(decode(VECTOR["spki"], field="spki"))
    got = derive_page.evaluate(
        f"""async ([secretHex, purpose, petitionId, keyId, spki]) => {{
        const hex = {HEX}, fromHex = {FROM_HEX};
        const made = await window.derive.credential(fromHex(secretHex), purpose, petitionId, keyId,
                                                    Uint8Array.from(spki));
        return {{ message: hex(made.message), blinded: hex(made.blindedMsg), inv: hex(made.inv) }};
    }}""",
        [VECTOR["secret"], expected["purpose"], expected.get("subject", VECTOR["petition_id"]), VECTOR["key_id"], spki],
    )
    assert got["message"] == expected["message"]
    assert got["blinded"] == expected["blinded_msg"]
    modulus_len = (int(VECTOR["n"], 16).bit_length() + 7) // 8
    assert got["inv"] == expected["inv"].rjust(2 * modulus_len, "0")
    # The same from a JWK, as a CryptoKey gives it.
    jwk_blinded = derive_page.evaluate(
        f"""async ([secretHex, purpose, petitionId, keyId, spki]) => {{
        const hex = {HEX}, fromHex = {FROM_HEX};
        const key = await crypto.subtle.importKey("spki", Uint8Array.from(spki),
                                                  {{ name: "RSA-PSS", hash: "SHA-384" }}, true, ["verify"]);
        const made = await window.derive.credential(fromHex(secretHex), purpose, petitionId, keyId,
                                                    await crypto.subtle.exportKey("jwk", key));
        return hex(made.blindedMsg);
    }}""",
        [VECTOR["secret"], expected["purpose"], expected.get("subject", VECTOR["petition_id"]), VECTOR["key_id"], spki],
    )
    assert jwk_blinded == expected["blinded_msg"]


def test_the_browser_makes_the_check_and_the_recovery_code_and_reads_them_back(derive_page: Page) -> None:
    got = derive_page.evaluate(
        f"""async ([secretHex, code]) => {{
        const hex = {HEX}, fromHex = {FROM_HEX};
        const secret = fromHex(secretHex);
        const typed = code.toLowerCase().replace(/-/g, " ").replace(/0/g, "o").replace(/1/g, "l");
        const roundTrips = [];
        for (let index = 0; index < 30; index += 1) {{
            const fresh = window.derive.newSecret();
            const back = await window.derive.parseRecoveryCode(await window.derive.recoveryCode(fresh));
            roundTrips.push(hex(back) === hex(fresh));
        }}
        const refusal = async (text) => {{
            try {{ await window.derive.parseRecoveryCode(text); return null; }}
            catch (error) {{ return [error instanceof window.derive.RecoveryCodeError, error.message]; }}
        }};
        return {{
            check: hex(await window.derive.walletCheck(secret)),
            code: await window.derive.recoveryCode(secret),
            parsed: hex(await window.derive.parseRecoveryCode(code)),
            typed: hex(await window.derive.parseRecoveryCode(typed)),
            roundTrips,
            typo: await refusal((code[0] === "1" ? "2" : "1") + code.slice(1)),
            short: await refusal(code.slice(0, -5)),
        }};
    }}""",
        [VECTOR["secret"], VECTOR["recovery_code"]],
    )
    assert got["check"] == VECTOR["check"]
    assert got["code"] == VECTOR["recovery_code"]
    assert got["parsed"] == got["typed"] == VECTOR["secret"]
    assert all(got["roundTrips"]) and len(got["roundTrips"]) == 30
    assert got["typo"] == [True, "This recovery code has a typo: check each group of four against your copy."]
    assert got["short"] == [True, "A recovery code is 28 letters and digits, in groups of four."]


# -- two devices of one account ----------------------------------------------------------------------------------

SIGN_PETITION = "Publish the salary bands for every role"  # demo: open, anonymity allowed, signed by Ana only
TALK_PETITION = "Stop recording our screens to train AI"  # demo: open, anonymous comments allowed
WALLET_RECORDS = """async () => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("tokens", { keyPath: "id" });
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    return await new Promise((ok) => { const r = db.transaction("tokens").objectStore("tokens").getAll();
        r.onsuccess = () => ok(r.result); });
}"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[live_server.LiveServer]:
    """The demo organization on a database of its own (a SQLite file, or a scratch PostgreSQL database), with
    hourly batches that the test runs itself."""
    with live_server.demo_on_scratch(
        request.param,
        tmp_path_factory.mktemp("wallet"),
        "browserwallet",
        anonymous_batch_seconds=3600,
        anonymous_max_delay_seconds=3600,
        shared_page_seconds=0,
    ) as live:
        yield live


def run_batches(server: live_server.LiveServer) -> None:
    """Both hourly batches, as the hours pass: a group smaller than k waits one hour, then goes out."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from app.anonymous import service as signatures
    from app.comments import anonymous as comments
    from app.core.clock import FrozenClock

    app = server.app
    rt = app.state.runtime
    an_hour_later = dataclasses.replace(rt, clock=FrozenClock(datetime.now(UTC) + timedelta(hours=1)))
    for runtime in (rt, an_hour_later):
        signatures.write_batch(sessions=app.state.sessionmaker, rt=runtime)
        comments.write_batch(sessions=app.state.sessionmaker, rt=runtime)


def records(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(WALLET_RECORDS)


def path_of(server: live_server.LiveServer, title: str) -> str:
    return live_server.petition_url(server, title).removeprefix(server.base_url)


def ready(page: Page, path: str) -> None:
    from playwright.sync_api import expect

    page.goto(path)
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")


def pseudonym_of(message: str) -> str:
    import hashlib

    from app.core import b64url

    return "Colleague " + hashlib.sha256(b"undersigned/pseudonym/v1" + b64url.decode(message)).hexdigest()[:6]


def accessible(page: Page) -> None:
    """axe-core finds nothing on the page as it is now, and nothing scrolls sideways on a 360px phone."""
    from tests.accessibility import describe, violations

    found = violations(page)
    assert not found, f"axe-core found accessibility problems on {page.url}:\n{describe(found)}"
    if page.viewport_size and page.viewport_size["width"] == 360:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, page.url


def comment_anonymously(page: Page, path: str, body: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{path}/comments")
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
    discussion = page.locator("#discussion")
    expect(discussion.locator("[data-anonymous-discussion]")).to_have_attribute("data-anonymous-ready", "true")
    discussion.get_by_label("Post anonymously", exact=True).check()
    discussion.get_by_label("Your comment").fill(body)
    confirm = discussion.get_by_label("I understand: post anonymously anyway")
    if confirm.count() and confirm.is_visible():
        confirm.check()
    discussion.get_by_role("button", name="Post comment anonymously").click()
    expect(discussion.locator("[data-anonymous-status]")).to_contain_text("It will appear as", use_inner_text=True)


def test_a_second_device_takes_the_wallet_by_recovery_code_and_both_are_one_wallet(person, server) -> None:
    from playwright.sync_api import expect

    sign_path, talk_path = path_of(server, SIGN_PETITION), path_of(server, TALK_PETITION)
    sign_id = int(sign_path.rsplit("/", 1)[1])

    # Device A: the first signed-in page starts the wallet (a secret made here, its check registered) and collects.
    laptop = person("dara")
    laptop.goto("/")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    kept = records(laptop)
    (secret_record,) = [item for item in kept if item.get("kind") == "secret"]
    held = {(item["petitionId"], item["purpose"]): item for item in kept if item.get("status") == "held"}
    assert (sign_id, "sign") in held and held, kept
    ready(laptop, sign_path)
    expect(laptop.locator("[data-wallet-status]")).to_contain_text("This device holds your wallet")
    expect(laptop.get_by_label("Nobody: sign anonymously")).to_be_visible()

    # A shows the recovery code, only when asked.
    ready(laptop, "/wallet")
    page = laptop.locator("main")
    expect(page.locator("[data-wallet-device]")).to_contain_text("This device holds your wallet")
    expect(page.locator("[data-recovery-code]")).to_be_hidden()
    expect(page).to_contain_text("open every anonymous signature and comment of yours")
    page.get_by_role("button", name="Show my recovery code").click()
    code_shown = page.locator("[data-recovery-code]")
    expect(code_shown).to_be_focused()
    code = code_shown.inner_text()
    accessible(laptop)
    secret = derive.parse_recovery_code(code)
    assert derive.check(secret) == decode(secret_record["check"], field="check")
    # What the browser holds is what the secret derives in Python: the bundle and app/anonymous/derive.py agree.
    published = live_server.get_json(server, "/api/v1/anonymous/keys")
    keys = {(key["petition_id"], key["purpose"]): key for key in published}
    for (petition_id, purpose), item in held.items():
        key = keys[(petition_id, purpose)]
        public = blindrsa.PublicKey.from_spki(decode(key["spki"], field="spki"))
        made = derive.credential(
            secret, purpose=purpose, petition_id=key["petition_id"], key_id=key["key_id"], public=public
        )
        assert decode(item["message"], field="message") == made.message
        blindrsa.verify(public, made.message, decode(item["signature"], field="signature"))

    # Device B, a fresh browser of the same account: the wallet is elsewhere, and its sign panel says so.
    phone = person("dara")
    phone.goto("/")
    phone.set_viewport_size({"width": 360, "height": 800})
    expect(phone.locator("html")).to_have_attribute("data-wallet-ready", "true")
    assert not [item for item in records(phone) if item.get("kind") == "secret" or item.get("status") == "held"]
    ready(phone, sign_path)
    status = phone.locator("[data-wallet-status]")
    expect(status).to_contain_text("Your wallet is on another device, so this one cannot sign anonymously yet")
    expect(status.get_by_role("link", name="link this device")).to_have_attribute("href", "/wallet/link")
    expect(status.get_by_role("link", name="Your wallet")).to_have_attribute("href", "/wallet")
    expect(phone.get_by_label("Nobody: sign anonymously")).to_be_hidden()
    accessible(phone)

    # B enters the code on /wallet: a typo, then another wallet's code, are told apart; the right one works.
    ready(phone, "/wallet")
    page = phone.locator("main")
    expect(page.locator("[data-wallet-device]")).to_contain_text("Your wallet is on another device")
    field = page.get_by_role("textbox", name="Recovery code")
    error = page.get_by_role("alert")
    field.fill(code[:-1] + ("1" if code[-1] != "1" else "2"))
    page.get_by_role("button", name="Use this recovery code").click()
    expect(error).to_have_text("This recovery code has a typo: check each group of four against your copy.")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    accessible(phone)
    field.fill(derive.recovery_code(derive.new_secret()))
    page.get_by_role("button", name="Use this recovery code").click()
    expect(error).to_contain_text("This is not the recovery code of your wallet")
    assert not [item for item in records(phone) if item.get("kind") == "secret"]
    field.fill(code.lower().replace("-", " "))
    page.get_by_role("button", name="Use this recovery code").click()
    result = page.locator("[data-recovery-result]")
    # Rebuilding fetches, checks (the log, its witnesses) and unblinds every credential: on a loaded two-core
    # machine that took more than the default five seconds.
    expect(result).to_contain_text(
        f"this device now holds your wallet, and rebuilt {len(held)} credentials", timeout=30_000
    )
    expect(result).to_be_focused()
    expect(error).to_be_hidden()
    expect(page.locator("[data-wallet-device]")).to_contain_text("This device holds your wallet")
    rebuilt = {
        (item["petitionId"], item["purpose"]): item["message"]
        for item in records(phone)
        if item.get("status") == "held"
    }
    assert rebuilt == {key: item["message"] for key, item in held.items()}

    # B signs anonymously.
    ready(phone, sign_path)
    expect(phone.locator("[data-wallet-status]")).to_contain_text("This device holds your wallet")
    panel = phone.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    confirm = panel.get_by_label("I understand that I could be identified by counting")
    if confirm.count():
        confirm.check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(panel.locator("[data-anonymous-status]")).to_contain_text("You signed anonymously: queued")

    # After the batch, A's token for that petition reads as spent, from the published entries alone.
    run_batches(server)
    ledger = live_server.get_json(server, f"/api/v1/petitions/{sign_id}/anonymous-signatures")
    assert [entry["message"] for entry in ledger["entries"]] == [held[(sign_id, "sign")]["message"]]
    asked = []
    laptop.on("request", lambda request: asked.append(request))
    ready(laptop, sign_path)
    expect(laptop.locator("#sign [data-anonymous-status]")).to_have_text(
        "You signed anonymously, from this or another device; it is published and counted."
    )
    expect(laptop.locator("form[data-sign-form]")).to_be_hidden()
    ledger_reads = [request for request in asked if "/anonymous-signatures" in request.url]
    assert ledger_reads and all("cookie" not in request.all_headers() for request in ledger_reads)
    # The batch kept the signer credential's reply with the signature (issue #25): each device, once it sees the
    # signature published, fetches it without cookies and holds the same signer credential, for signers' polls.
    ready(phone, sign_path)
    reply_reads = [request for request in asked if "/signer-replies/" in request.url]
    assert reply_reads and all("cookie" not in request.all_headers() for request in reply_reads)

    def signer_credentials(page: Page) -> list[str]:
        return [
            item["message"]
            for item in records(page)
            if item.get("purpose") == "signer" and item.get("petitionId") == sign_id and item.get("status") == "held"
        ]

    assert signer_credentials(laptop) == signer_credentials(phone) and len(signer_credentials(phone)) == 1

    # Both devices comment anonymously: one credential, one pseudonym.
    comment_anonymously(laptop, talk_path, "From my laptop: the recordings include our chats.")
    comment_anonymously(phone, talk_path, "From my phone: and nobody asked us.")
    run_batches(server)
    talk_id = int(talk_path.rsplit("/", 1)[1])
    pseudonym = pseudonym_of(held[(talk_id, "discuss")]["message"])
    ready(laptop, f"{talk_path}/comments")
    for text in ("From my laptop", "From my phone"):
        expect(laptop.locator("article[data-pseudonym]", has_text=text).locator(".comment-author")).to_have_text(
            pseudonym
        )


def test_a_browser_without_indexeddb_says_so_and_signs_by_name(person, server) -> None:
    from playwright.sync_api import expect

    sign_path = path_of(server, SIGN_PETITION)
    laptop = person("ben")  # his wallet starts here and collects the petition's token
    laptop.goto("/")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    browser = person(None)
    browser.add_init_script('Object.defineProperty(window, "indexedDB", { configurable: true, get: () => undefined });')
    from app.demo import DEMO_PASSWORD

    browser.goto("/signin")
    browser.locator("main").get_by_label("Work email address").fill("ben@example.org")
    browser.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
    browser.locator("main").get_by_role("button", name="Sign in").click()
    ready(browser, sign_path)
    panel = browser.locator("#sign")
    expect(panel.locator("[data-wallet-status]")).to_contain_text(
        "This browser cannot keep a wallet: its storage (IndexedDB) is blocked or turned off here"
    )
    expect(panel.get_by_label("Nobody: sign anonymously")).to_be_hidden()
    panel.get_by_label("I give up signing this petition anonymously").check()
    panel.get_by_label("Only the organizers").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(browser.locator("main .flashes")).to_contain_text("You gave up signing it anonymously")
    ready(browser, "/wallet")
    expect(browser.locator("[data-wallet-device]")).to_contain_text("This browser cannot keep a wallet")


def test_a_device_that_loses_the_race_to_start_the_wallet_keeps_no_secret(chromium, server) -> None:
    """Two devices start the account's wallet at once: the server keeps one check, the other device hears 409,
    forgets the secret it made (nothing was collected with it) and says the wallet is elsewhere."""
    import base64

    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    other = derive.check(derive.new_secret())
    context = chromium.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)

    def the_other_device_first(route) -> None:
        won = route.fetch(post_data=json.dumps({"check": base64.urlsafe_b64encode(other).decode().rstrip("=")}))
        assert won.status == 201, won.text()
        route.continue_()

    try:
        context.route("**/api/v1/wallet/check", the_other_device_first)
        page = context.new_page()
        page.goto("/signin")
        page.locator("main").get_by_label("Work email address").fill("chen@example.org")
        page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        ready(page, path_of(server, SIGN_PETITION))
        expect(page.locator("[data-wallet-status]")).to_contain_text("Your wallet is on another device")
        kept = records(page)
        assert not [item for item in kept if item.get("kind") == "secret" or item.get("status") == "held"], kept
        wallet = page.request.get("/api/v1/wallet").json()
        assert decode(wallet["wallet_check"], field="check") == other
    finally:
        context.close()


# -- what a server, a lost answer or an early submit cannot do to a device's wallet ------------------------------

ACCOUNT_ID = "document.querySelector('meta[name=\"undersigned-account\"]').content"
PUT_RECORD = """async (record) => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("tokens", { keyPath: "id" });
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    await new Promise((ok, fail) => { const t = db.transaction("tokens", "readwrite");
        t.objectStore("tokens").put(record); t.oncomplete = ok; t.onerror = () => fail(t.error); });
}"""


def b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def secrets_kept(page: Page) -> dict[str, str]:
    """Every wallet secret this browser keeps, set aside or not: {record id: secret}."""
    return {item["id"]: item["secret"] for item in records(page) if item.get("kind") in ("secret", "stale-secret")}


def test_a_server_that_says_the_account_has_no_wallet_cannot_make_a_browser_delete_it(person, server) -> None:
    """The attacker's method: a modified server answers GET /api/v1/wallet with wallet_check null, then refuses the
    browser's registration with 409. The browser used to delete its secret (and every credential it could still
    rebuild with it); a secret the server once took, or that derived anything, is now only ever set aside."""
    from playwright.sync_api import expect

    laptop = person("ana")
    laptop.goto("/")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    ready(laptop, "/wallet")
    expect(laptop.locator("[data-wallet-device]")).to_contain_text("This device holds your wallet")
    (secret_record,) = [item for item in records(laptop) if item.get("kind") == "secret"]
    assert [item for item in records(laptop) if item.get("derived")]

    def forgetful(route) -> None:
        if route.request.method != "GET":
            route.continue_()
            return
        body = route.fetch().json()
        route.fulfill(status=200, content_type="application/json", body=json.dumps({**body, "wallet_check": None}))

    def refusing(route) -> None:
        route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps(
                {"error": {"code": "conflict", "message": "This account's wallet was started on another device."}}
            ),
        )

    laptop.context.route(WALLET_STATE, forgetful)
    laptop.context.route("**/api/v1/wallet/check", refusing)
    ready(laptop, "/wallet")
    expect(laptop.locator("[data-wallet-device]")).to_contain_text("Your wallet is on another device")
    assert secret_record["secret"] in secrets_kept(laptop).values(), records(laptop)
    # The lie ends: the server names the check again, and the device holds its wallet as before.
    laptop.context.unroute(WALLET_STATE, forgetful)
    laptop.context.unroute("**/api/v1/wallet/check", refusing)
    ready(laptop, "/wallet")
    expect(laptop.locator("[data-wallet-device]")).to_contain_text("This device holds your wallet")
    assert secrets_kept(laptop) == {secret_record["id"]: secret_record["secret"]}
    (restored,) = [item for item in records(laptop) if item.get("kind") == "secret"]
    assert restored["registered"] is True


def test_a_device_holding_a_secret_that_is_not_the_accounts_wallet_can_take_the_wallet(person, server) -> None:
    """A phone made a secret whose registration was lost, and the laptop registered the account's wallet meanwhile:
    the phone's secret is set aside (never destroyed), the pages say so, and /wallet/link offers to type a code,
    not only to show one (which could never work); the recovery code then works there."""
    from playwright.sync_api import expect

    sign_path = path_of(server, SIGN_PETITION)
    laptop = person("riley")
    laptop.goto("/")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    ready(laptop, "/wallet")
    expect(laptop.locator("[data-wallet-device]")).to_contain_text("This device holds your wallet")
    (wallet_secret,) = [item["secret"] for item in records(laptop) if item.get("kind") == "secret"]

    phone = person("riley")
    phone.goto("/")
    phone.set_viewport_size({"width": 360, "height": 800})
    expect(phone.locator("html")).to_have_attribute("data-wallet-ready", "true")
    account = phone.evaluate(ACCOUNT_ID)
    stale = derive.new_secret()
    phone.evaluate(
        PUT_RECORD,
        {
            "id": f"{account}:wallet",
            "account": account,
            "kind": "secret",
            "secret": b64(stale),
            "check": b64(derive.check(stale)),
        },
    )
    phone.goto("/wallet/link")  # first, before any page that syncs: the link page itself sets the secret aside
    expect(phone.locator("[data-link-panel=enter]")).to_be_visible()
    expect(phone.locator("[data-link-panel=show]")).to_be_hidden()

    ready(phone, "/wallet")
    device = phone.locator("[data-wallet-device]")
    expect(device).to_contain_text("Your wallet is on another device")
    expect(device).to_contain_text("This browser kept another wallet secret, one that is not your account's wallet")
    expect(device).to_contain_text("set aside, not deleted")
    assert secrets_kept(phone) == {f"{account}:wallet:stale:{b64(derive.check(stale))}": b64(stale)}
    accessible(phone)

    ready(phone, sign_path)
    status = phone.locator("[data-wallet-status]")
    expect(status).to_contain_text("Your wallet is on another device, so this one cannot sign anonymously yet")
    expect(phone.get_by_label("Nobody: sign anonymously")).to_be_hidden()

    ready(phone, "/wallet")
    code = derive.recovery_code(decode(wallet_secret, field="secret"))
    phone.locator("main").get_by_role("textbox", name="Recovery code").fill(code)
    phone.locator("main").get_by_role("button", name="Use this recovery code").click()
    expect(phone.locator("[data-recovery-result]")).to_contain_text("this device now holds your wallet")
    kept = secrets_kept(phone)
    assert kept[f"{account}:wallet"] == wallet_secret and b64(stale) in kept.values()
    ready(phone, sign_path)
    expect(phone.locator("[data-wallet-status]")).to_contain_text("This device holds your wallet")
    expect(phone.get_by_label("Nobody: sign anonymously")).to_be_visible()


def test_a_recovery_code_is_refused_when_the_account_has_no_wallet(person, server) -> None:
    """No device of an account without a wallet made the code typed: it is another account's, and two accounts
    holding one secret would send identical blinded requests, linking them. Refused, as the client refuses it."""
    from playwright.sync_api import expect

    down = {"on": True}

    def unreachable(route) -> None:
        if down["on"]:
            route.fulfill(
                status=503,
                content_type="application/json",
                body=json.dumps({"error": {"code": "unavailable", "message": "Try again in a minute."}}),
            )
        else:
            route.continue_()

    from app.demo import DEMO_PASSWORD

    browser = person(None)
    browser.context.route("**/api/v1/wallet/check", unreachable)  # this device cannot start the wallet just now
    browser.goto("/signin")
    browser.locator("main").get_by_label("Work email address").fill("morgan@example.org")
    browser.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
    browser.locator("main").get_by_role("button", name="Sign in").click()
    browser.wait_for_url(re.compile(r"/$"))
    ready(browser, path_of(server, SIGN_PETITION))
    panel = browser.locator("#sign")
    expect(panel.locator("[data-wallet-status]")).to_contain_text(
        "This device could not start your wallet, so it cannot sign anonymously now. Try again in a minute."
    )
    expect(panel.get_by_label("Nobody: sign anonymously")).to_be_hidden()
    expect(panel.get_by_role("button", name="Sign this petition")).to_be_visible()
    accessible(browser)
    ready(browser, "/wallet")
    expect(browser.locator("[data-wallet-device]")).to_contain_text("This device could not start your wallet")
    down["on"] = False
    someone_elses = derive.new_secret()
    page = browser.locator("main")
    page.get_by_role("textbox", name="Recovery code").fill(derive.recovery_code(someone_elses))
    page.get_by_role("button", name="Use this recovery code").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "This account has no wallet yet, so this code belongs to another account's wallet"
    )
    expect(page.get_by_role("textbox", name="Recovery code")).to_be_focused()
    assert browser.request.get("/api/v1/wallet").json()["wallet_check"] is None
    assert b64(someone_elses) not in secrets_kept(browser).values()
    # The secret this device made but could not register: refused with 409 (another device won the race), it is
    # forgotten, as the command-line client forgets one, since it was never registered and derived nothing.
    (made_here,) = secrets_kept(browser).values()
    browser.context.route(
        "**/api/v1/wallet/check",
        lambda route: route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps(
                {"error": {"code": "conflict", "message": "This account's wallet was started on another device."}}
            ),
        ),
    )
    ready(browser, "/wallet")
    expect(browser.locator("[data-wallet-device]")).to_contain_text("Your wallet is on another device")
    assert secrets_kept(browser) == {}, made_here


def test_the_recovery_form_sends_nothing_when_submitted_before_its_script_runs(person, server) -> None:
    """The recovery code is secret from the server: a form submitted without the page's script (it failed to load,
    or had not run yet) carries it nowhere, neither in an address nor in a body."""
    from playwright.sync_api import expect

    browser = person("admin")
    browser.context.route("**/static/wallet-page.js", lambda route: route.abort())
    browser.goto("/wallet")
    code = derive.recovery_code(derive.new_secret())
    sent: list[str] = []
    browser.on("request", lambda request: sent.append(f"{request.url} {request.post_data or ''}"))
    form = browser.locator("[data-recovery-form]")
    form.evaluate("(form) => { form.hidden = false; }")
    form.get_by_role("textbox", name="Recovery code").fill(code)
    with browser.expect_navigation():
        form.get_by_role("button", name="Use this recovery code").click()
    expect(browser.locator("h1")).to_have_text("Your wallet")
    assert sent
    compact = code.replace("-", "")
    assert not [line for line in sent if code in line or compact in line or "recovery" in line.split(" ", 1)[0]], sent
