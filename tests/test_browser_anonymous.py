"""In a real browser: the wallet (blindrsa-ts, bundled) against the Python issuer, end to end.

Chromium blinds and finalizes; the server blind-signs with gmpy2; Python verifies what the browser sent."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from app.anonymous.service import decode
from app.core import blindrsa
from tests import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: open, anonymity allowed, signed by Ana only


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "anonymous.db")
    try:
        yield live
    finally:
        live.stop()


def open_petition(page: Page) -> int:
    from playwright.sync_api import expect

    page.goto("/petitions")
    page.locator("main").get_by_role("link", name=PETITION).click()
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
    found = re.search(r"/petitions/(\d+)", page.url)
    assert found is not None
    return int(found.group(1))


def ledger(server: live_server.LiveServer, petition_id: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.base_url}/api/v1/petitions/{petition_id}/anonymous-signatures") as reply:
        return json.loads(reply.read())


def test_sign_anonymously_in_the_browser_and_verify_in_python(person, server) -> None:
    from playwright.sync_api import expect

    chen = person("chen")
    petition_id = open_petition(chen)
    tally = chen.locator(".tally-count strong")
    expect(tally).to_have_text("1")
    panel = chen.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    # Few colleagues hold the demo petition's token: the panel warns, and signs only once she confirms.
    expect(panel.locator("#anonymity-warning")).to_contain_text("counting can reveal that everyone left signed")
    confirm = panel.get_by_label("I understand that I could be identified by counting")
    panel.get_by_role("button", name="Sign this petition").click()
    assert confirm.evaluate("box => box.validity.valueMissing")  # the form is not sent unconfirmed
    confirm.check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(panel.locator("[data-anonymous-status]")).to_contain_text("You signed anonymously")
    chen.reload()
    expect(chen.locator("html")).to_have_attribute("data-wallet-ready", "true")
    expect(panel.locator("[data-anonymous-status]")).to_have_text(
        "You signed anonymously, from this or another device; it is published and counted."
    )
    expect(tally).to_have_text("2")

    # The browser's token verifies in Python under the key the petition published.
    published = ledger(server, petition_id)
    public = blindrsa.PublicKey.from_spki(decode(str(published["spki"]), field="spki"))
    assert public.key_id() == published["key_id"]
    (entry,) = published["entries"]
    blindrsa.verify(public, decode(entry["message"], field="m"), decode(entry["signature"], field="s"))
    assert published["anonymous_signatures"] == 1 and int(published["tokens_issued"]) >= 1


def test_signing_with_a_name_spends_the_token(person, server) -> None:
    from playwright.sync_api import expect

    dara = person("dara")
    petition_id = open_petition(dara)
    panel = dara.locator("#sign")
    expect(panel.get_by_label("Nobody: sign anonymously")).to_be_visible()  # she holds a token
    before = int(ledger(server, petition_id)["anonymous_signatures"])
    panel.get_by_label("Everyone").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(dara.locator("main .flashes")).to_contain_text("Your name is shown with the petition.")
    # Her token is spent: sent again without cookies, it is refused and nothing is counted.
    token = dara.evaluate(
        """async (petitionId) => {
        const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
            r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
        const all = await new Promise((ok) => { const r = db.transaction("tokens").objectStore("tokens").getAll();
            r.onsuccess = () => ok(r.result); });
        return all.find((t) => t.petitionId === petitionId);
    }""",
        petition_id,
    )
    request = urllib.request.Request(
        f"{server.base_url}/api/v1/anonymous/signatures",
        method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps(
            {"petition_id": petition_id, "message": token["message"], "signature": token["signature"]}
        ).encode(),
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 409
    refused.value.close()
    assert int(ledger(server, petition_id)["anonymous_signatures"]) == before
