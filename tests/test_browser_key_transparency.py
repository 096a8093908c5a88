"""Key transparency in the browser wallet (issue #20), in Chromium: a signing key shown to one account alone is
refused before anything is blinded, whether the server tailors only that account's wallet answer or the
cookie-less list as well (entry 0 of the petition's signature log, under a checkpoint the browser verified with
WebCrypto's Ed25519, still names the real key); a key that changed since the browser first accepted it is
refused; and the honest path collects and remembers the keys.

The attacker's method is the page's own router: a modified server answering one account's requests."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from app.core import blindrsa
from tests import live_server
from tests.test_browser_wallet_devices import PUT_RECORD, SIGN_PETITION, path_of, ready, records

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    with live_server.demo_on_scratch(request.param, tmp_path_factory.mktemp("keys"), "keytransparency",
                                     anonymous_batch_seconds=3600, anonymous_max_delay_seconds=3600,
                                     shared_page_seconds=0) as live:
        yield live


def petition_id_of(server: live_server.LiveServer) -> int:
    return int(path_of(server, SIGN_PETITION).rsplit("/", 1)[1])


OTHER = blindrsa.PrivateKey.generate(1024).public


def own_key(items: list[dict[str, Any]], petition_id: int) -> list[dict[str, Any]]:
    """The petition's signing key replaced with a key of this account's own."""
    spki = base64.urlsafe_b64encode(OTHER.spki()).decode().rstrip("=")
    return [{**item, "key_id": OTHER.key_id(), "spki": spki}
            if item["petition_id"] == petition_id and item.get("purpose", "sign") == "sign" else item
            for item in items]


def tailor(page: Page, path: str, change) -> None:  # type: ignore[no-untyped-def]
    def handler(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.method != "GET":
            route.continue_()
            return
        route.fulfill(status=200, content_type="application/json", body=json.dumps(change(route.fetch().json())))

    page.context.route(path, handler)


def token_requests(page: Page) -> list[str]:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url)
            if request.method == "POST" and request.url.endswith("/api/v1/wallet/tokens") else None)
    return asked


def kept_keys(page: Page, petition_id: int) -> dict[str, Any] | None:
    found = [item for item in records(page) if item.get("id") == f"petition-keys:{petition_id}"]
    return found[0] if found else None


def sign_in(page: Page, local_part: str) -> None:
    """Sign in by the form (after the test set its router up: the home page starts the wallet at once)."""
    from app.demo import DEMO_PASSWORD

    page.goto("/signin")
    page.locator("main").get_by_label("Work email address").fill(f"{local_part}@example.org")
    page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_a_key_shown_to_one_account_is_refused_and_the_honest_key_is_remembered(person, server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    chen = person(None)
    asked = token_requests(chen)
    # Only the signed-in wallet answer carries a key of Chen's own: the cookie-less list shows the real one.
    tailor(chen, "**/api/v1/wallet", lambda state: {**state, "due": own_key(state["due"], petition_id)})
    sign_in(chen, "chen")
    ready(chen, path_of(server, SIGN_PETITION))
    status = chen.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(f"This browser refuses petition {petition_id}'s signing key: the key your account "
                                   "was given differs from the one published to everyone")
    expect(status).to_contain_text("Or sign below with your name")
    assert asked == [] and not [item for item in records(chen) if item.get("status") == "held"]
    assert kept_keys(chen, petition_id) is None

    # The cookie-less list tailored too (a server telling connections apart): entry 0 of the log still names the
    # real key, under a checkpoint this browser verified.
    tailor(chen, "**/api/v1/anonymous/keys", lambda keys: own_key(keys, petition_id))
    ready(chen, path_of(server, SIGN_PETITION))
    expect(status).to_contain_text(f"This browser refuses petition {petition_id}'s signing key: it is not the key "
                                   "the petition's signature log committed to when it opened")
    assert asked == [] and not [item for item in records(chen) if item.get("status") == "held"]

    # A checkpoint whose signature does not verify proves nothing: refused too.
    def forged(head: dict[str, Any]) -> dict[str, Any]:
        body, _, lines = head["checkpoint"].partition("\n\n")
        name, signature = lines.split(" ")[1], lines.split(" ")[2]
        raw = bytearray(base64.b64decode(signature))
        raw[-1] ^= 1
        bad = base64.b64encode(bytes(raw)).decode()
        return {**head, "checkpoint": f"{body}\n\n\u2014 {name} {bad}\n"}

    tailor(chen, f"**/api/v1/petitions/{petition_id}/log", forged)
    ready(chen, path_of(server, SIGN_PETITION))
    expect(status).to_contain_text(f"Petition {petition_id}'s signature log checkpoint's signature does not verify")
    assert asked == []

    # The honest server: collected, and the keys accepted are remembered with the log's key.
    chen.context.unroute("**/api/v1/wallet")
    chen.context.unroute("**/api/v1/anonymous/keys")
    chen.context.unroute(f"**/api/v1/petitions/{petition_id}/log")
    ready(chen, path_of(server, SIGN_PETITION))
    expect(status).not_to_contain_text("refuses")
    assert len(asked) == 1
    keys = chen.request.get("/api/v1/anonymous/keys").json()
    real = {key.get("purpose", "sign"): key["key_id"] for key in keys if key["petition_id"] == petition_id}
    remembered = kept_keys(chen, petition_id)
    assert remembered is not None and remembered["keys"] == real, remembered
    head = chen.request.get(f"/api/v1/petitions/{petition_id}/log").json()
    assert remembered["logKey"] == head["log_key"] and head["issuing_key"]["key_id"] == real["sign"]
    assert [item for item in records(chen) if item.get("status") == "held" and item["petitionId"] == petition_id]


def test_a_key_that_changed_since_the_browser_first_accepted_it_is_refused(person, server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    dara = person(None)
    asked = token_requests(dara)
    dara.goto("/api/v1/csrf")  # this site, before the wallet starts: the browser accepted OTHER first
    dara.evaluate(PUT_RECORD, {"id": f"petition-keys:{petition_id}", "kind": "petition-keys", "petition": petition_id,
                               "keys": {"sign": OTHER.key_id()}, "logKey": None})
    sign_in(dara, "dara")
    ready(dara, path_of(server, SIGN_PETITION))
    status = dara.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(f"This browser refuses petition {petition_id}'s signing key: it changed since this "
                                   "browser first accepted it")
    assert asked == [] and not [item for item in records(dara) if item.get("status") == "held"]
    assert kept_keys(dara, petition_id)["keys"] == {"sign": OTHER.key_id()}  # kept, as evidence


def test_a_device_taking_the_wallet_by_code_rebuilds_nothing_under_a_key_of_its_own(person, server) -> None:  # type: ignore[no-untyped-def]
    """The server keeps each reply and names its key in GET /api/v1/wallet's `issued`: a device that takes the
    wallet by recovery code checks those keys too before it keeps anything rebuilt."""
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    laptop = person("ben")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    ready(laptop, "/wallet")
    laptop.locator("main").get_by_role("button", name="Show my recovery code").click()
    shown = laptop.locator("[data-recovery-code]")
    expect(shown).to_have_text(re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){6}$"))  # shown once derived
    code = shown.inner_text()

    phone = person(None)
    tailor(phone, "**/api/v1/wallet", lambda state: {**state, "issued": own_key(state["issued"], petition_id)})
    sign_in(phone, "ben")
    ready(phone, "/wallet")
    page = phone.locator("main")
    page.get_by_role("textbox", name="Recovery code").fill(code)
    page.get_by_role("button", name="Use this recovery code").click()
    result = page.locator("[data-recovery-result]")
    expect(result).to_contain_text(f"This device now holds your wallet, but rebuilt nothing: This browser refuses "
                                   f"petition {petition_id}'s signing key: the key your account was given differs",
                                   timeout=15_000)
    expect(result).to_be_focused()
    assert not [item for item in records(phone) if item.get("status") == "held"]
