"""Key transparency in the browser wallet (issue #20), in Chromium: a signing key shown to one account alone is
refused before anything is blinded, whether the server tailors only that account's wallet answer or the
cookie-less list as well (entry 0 of the petition's signature log, under a checkpoint the browser verified with
WebCrypto's Ed25519, still names the real key); a key that changed since the browser first accepted it is
refused; and the honest path collects and remembers the keys.

The deployment here names a witness (UNDERSIGNED_LOG_WITNESSES), whose cosignatures of every checkpoint the fixture
posts: the browser then accepts a key only under a checkpoint that witness cosigned, pins the witness per petition
with the keys, and refuses a log that lacks the cosignature or that stops naming the witness after first use. The
discussion key is held to entry 0 as the signing key is.

The attacker's method is the page's own router: a modified server answering one account's requests."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from app.core import blindrsa
from app.log import checkpoint as notes
from tests import live_server
from tests.test_browser_wallet_devices import PUT_RECORD, SIGN_PETITION, path_of, ready, records

if TYPE_CHECKING:
    from playwright.sync_api import Page

# GET /api/v1/wallet, with or without the purposes the browser names (assets/src/sync.js's WALLET_PATH).
WALLET_STATE = re.compile(r"/api/v1/wallet(\?[^/]*)?$")
pytestmark = [pytest.mark.browser, pytest.mark.one_database]


WITNESS_KEY = Ed25519PrivateKey.generate()
WITNESS_NAME = "witness.example.net/w1"
WITNESS = notes.witness_verifier_key(WITNESS_NAME, WITNESS_KEY.public_key())


def cosign_every_checkpoint(live: live_server.LiveServer) -> None:
    """The witness cosigns every checkpoint of every log, as one that watched them all would have."""
    from app.log import service as signature_log
    from app.models.log import LogCheckpoint

    app = live.app
    with app.state.sessionmaker.begin() as db:
        for row in db.scalars(select(LogCheckpoint)).all():
            line = notes.cosign(row.note, WITNESS_NAME, WITNESS_KEY, 1796000000)
            signature_log.cosign(db=db, rt=app.state.runtime, petition_id=row.petition_id, size=row.size, line=line)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[live_server.LiveServer]:
    with live_server.demo_on_scratch(
        request.param,
        tmp_path_factory.mktemp("keys"),
        "keytransparency",
        anonymous_batch_seconds=3600,
        anonymous_max_delay_seconds=3600,
        shared_page_seconds=0,
        log_witnesses=[WITNESS],
    ) as live:
        cosign_every_checkpoint(live)
        yield live


def petition_id_of(server: live_server.LiveServer) -> int:
    return int(path_of(server, SIGN_PETITION).rsplit("/", 1)[1])


OTHER = blindrsa.PrivateKey.generate(1024).public


def own_key(items: list[dict[str, Any]], petition_id: int) -> list[dict[str, Any]]:
    """The petition's signing key replaced with a key of this account's own."""
    spki = base64.urlsafe_b64encode(OTHER.spki()).decode().rstrip("=")
    return [
        {**item, "key_id": OTHER.key_id(), "spki": spki}
        if item["petition_id"] == petition_id and item.get("purpose", "sign") == "sign"
        else item
        for item in items
    ]


def tailor(page: Page, path: str | re.Pattern[str], change) -> None:
    def handler(route) -> None:
        if route.request.method != "GET":
            route.continue_()
            return
        route.fulfill(status=200, content_type="application/json", body=json.dumps(change(route.fetch().json())))

    page.context.route(path, handler)


def token_requests(page: Page) -> list[str]:
    asked: list[str] = []
    page.on(
        "request",
        lambda request: (
            asked.append(request.url)
            if request.method == "POST" and request.url.endswith("/api/v1/wallet/tokens")
            else None
        ),
    )
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


def test_a_key_shown_to_one_account_is_refused_and_the_honest_key_is_remembered(person, server) -> None:
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    chen = person(None)
    asked = token_requests(chen)
    # Only the signed-in wallet answer carries a key of Chen's own: the cookie-less list shows the real one.
    tailor(chen, WALLET_STATE, lambda state: {**state, "due": own_key(state["due"], petition_id)})
    sign_in(chen, "chen")
    ready(chen, path_of(server, SIGN_PETITION))
    status = chen.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(
        f"This browser refuses petition {petition_id}'s signing key: the key your account "
        "was given differs from the one published to everyone"
    )
    expect(status).to_contain_text("Or sign below with your name")
    assert asked == [] and not [item for item in records(chen) if item.get("status") == "held"]
    assert kept_keys(chen, petition_id) is None

    # The cookie-less list tailored too (a server telling connections apart): entry 0 of the log still names the
    # real key, under a checkpoint this browser verified.
    tailor(chen, "**/api/v1/anonymous/keys", lambda keys: own_key(keys, petition_id))
    ready(chen, path_of(server, SIGN_PETITION))
    expect(status).to_contain_text(
        f"This browser refuses petition {petition_id}'s signing key: it is not the key "
        "the petition's signature log committed to when it opened"
    )
    assert asked == [] and not [item for item in records(chen) if item.get("status") == "held"]

    # A checkpoint whose signature does not verify proves nothing: refused too.
    def forged(head: dict[str, Any]) -> dict[str, Any]:
        body, _, lines = head["checkpoint"].partition("\n\n")
        log_line, *witness_lines = lines.splitlines(keepends=True)  # the log signs first
        name, signature = log_line.split(" ")[1], log_line.split(" ")[2]
        raw = bytearray(base64.b64decode(signature))
        raw[-1] ^= 1
        bad = base64.b64encode(bytes(raw)).decode()
        return {**head, "checkpoint": f"{body}\n\n\u2014 {name} {bad}\n" + "".join(witness_lines)}

    tailor(chen, f"**/api/v1/petitions/{petition_id}/log", forged)
    ready(chen, path_of(server, SIGN_PETITION))
    expect(status).to_contain_text(f"Petition {petition_id}'s signature log checkpoint's signature does not verify")
    assert asked == []

    # The honest server: collected, and the keys accepted are remembered with the log's key.
    chen.context.unroute(WALLET_STATE)
    chen.context.unroute("**/api/v1/anonymous/keys")
    chen.context.unroute(f"**/api/v1/petitions/{petition_id}/log")
    ready(chen, path_of(server, SIGN_PETITION))
    expect(status).not_to_contain_text("refuses")
    assert len(asked) == 1
    keys = chen.request.get("/api/v1/anonymous/keys").json()
    # The signing and discussion keys, which Chen collected; the signers' key (issue #25) is for signers only.
    real = {
        key.get("purpose", "sign"): key["key_id"]
        for key in keys
        if key.get("petition_id") == petition_id and key.get("purpose", "sign") in ("sign", "discuss")
    }
    remembered = kept_keys(chen, petition_id)
    assert remembered is not None and remembered["keys"] == real, remembered
    head = chen.request.get(f"/api/v1/petitions/{petition_id}/log").json()
    assert remembered["logKey"] == head["log_key"] and head["issuing_key"]["key_id"] == real["sign"]
    assert [item for item in records(chen) if item.get("status") == "held" and item["petitionId"] == petition_id]


def test_a_key_that_changed_since_the_browser_first_accepted_it_is_refused(person, server) -> None:
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    dara = person(None)
    asked = token_requests(dara)
    dara.goto("/api/v1/csrf")  # this site, before the wallet starts: the browser accepted OTHER first
    dara.evaluate(
        PUT_RECORD,
        {
            "id": f"petition-keys:{petition_id}",
            "kind": "petition-keys",
            "petition": petition_id,
            "keys": {"sign": OTHER.key_id()},
            "logKey": None,
        },
    )
    sign_in(dara, "dara")
    ready(dara, path_of(server, SIGN_PETITION))
    status = dara.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(
        f"This browser refuses petition {petition_id}'s signing key: it changed since this browser first accepted it"
    )
    assert asked == [] and not [item for item in records(dara) if item.get("status") == "held"]
    kept = kept_keys(dara, petition_id)
    assert kept is not None and kept["keys"] == {"sign": OTHER.key_id()}  # kept, as evidence


def test_a_device_taking_the_wallet_by_code_rebuilds_nothing_under_a_key_of_its_own(person, server) -> None:
    """The server keeps each reply and names its key in GET /api/v1/wallet's `issued`: a device that takes the
    wallet by recovery code checks those keys too before it keeps anything rebuilt."""
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    laptop = person("ben")
    laptop.goto("/")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    ready(laptop, "/wallet")
    laptop.locator("main").get_by_role("button", name="Show my recovery code").click()
    shown = laptop.locator("[data-recovery-code]")
    expect(shown).to_have_text(re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){6}$"))  # shown once derived
    code = shown.inner_text()

    phone = person(None)
    tailor(phone, WALLET_STATE, lambda state: {**state, "issued": own_key(state["issued"], petition_id)})
    sign_in(phone, "ben")
    ready(phone, "/wallet")
    page = phone.locator("main")
    page.get_by_role("textbox", name="Recovery code").fill(code)
    page.get_by_role("button", name="Use this recovery code").click()
    result = page.locator("[data-recovery-result]")
    expect(result).to_contain_text(
        f"This device now holds your wallet, but rebuilt nothing: This browser refuses "
        f"petition {petition_id}'s signing key: the key your account was given differs",
        timeout=15_000,
    )
    expect(result).to_be_focused()
    assert not [item for item in records(phone) if item.get("status") == "held"]


def new_member(server: live_server.LiveServer, local_part: str) -> str:
    """A worker of the demo organization who has collected nothing yet, with the demo password."""
    from datetime import UTC, datetime

    from app.core.security import hash_password
    from app.demo import DEMO_PASSWORD
    from app.models.accounts import User

    now = datetime.now(UTC)
    with server.app.state.sessionmaker.begin() as db:
        db.add(
            User(
                email=f"{local_part}@example.org",
                display_name=local_part.title(),
                email_verified_at=now,
                created_at=now,
                roles=[],
                password_hash=hash_password(DEMO_PASSWORD),
            )
        )
    return local_part


def without_witness(note: str) -> str:
    """The checkpoint with the witness's cosignature line taken out: the log's own signature still verifies."""
    return "".join(line for line in note.splitlines(keepends=True) if f" {WITNESS_NAME} " not in line)


def test_a_log_the_witness_did_not_cosign_or_stopped_naming_is_refused(person, server) -> None:
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    erin = person(None)
    asked = token_requests(erin)
    base = f"**/api/v1/petitions/{petition_id}/log"
    # A server showing Erin a log no witness saw: every checkpoint, the head's and the older ones, without the
    # witness's line. The log's own signature verifies; the witness's is missing.
    tailor(erin, base, lambda head: {**head, "checkpoint": without_witness(head["checkpoint"])})
    tailor(
        erin,
        f"{base}/checkpoints*",
        lambda page: {"checkpoints": [without_witness(note) for note in page["checkpoints"]]},
    )
    sign_in(erin, new_member(server, "erin"))
    ready(erin, path_of(server, SIGN_PETITION))
    status = erin.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(
        f"Petition {petition_id}'s signature log is not cosigned by its witnesses ({WITNESS_NAME})"
    )
    expect(status).to_contain_text("try again later")
    assert asked == [] and not [item for item in records(erin) if item.get("status") == "held"]
    assert kept_keys(erin, petition_id) is None

    # The honest log: the keys pass and the witness is pinned with them (the request for tokens is cut here, so
    # that nothing is collected and the next visit checks the keys again).
    erin.context.unroute(base)
    erin.context.unroute(f"{base}/checkpoints*")
    erin.context.route("**/api/v1/wallet/tokens", lambda route: route.abort())
    with erin.expect_request("**/api/v1/wallet/tokens"):  # asked for only once every key passed and was pinned
        erin.goto(path_of(server, SIGN_PETITION))
    expect(erin.locator("html")).to_have_attribute("data-wallet-ready", re.compile(r"."))  # the wallet is done
    remembered = kept_keys(erin, petition_id)
    assert remembered is not None and remembered["witnesses"] == [WITNESS], remembered
    erin.context.unroute("**/api/v1/wallet/tokens")
    tried = len(asked)

    # After first use the server stops naming the witness for Erin (and shows the log without its line): refused,
    # where a browser that never pinned it would have taken the log as it came.
    tailor(erin, base, lambda head: {**head, "witness_keys": [], "checkpoint": without_witness(head["checkpoint"])})
    tailor(
        erin,
        f"{base}/checkpoints*",
        lambda page: {"checkpoints": [without_witness(note) for note in page["checkpoints"]]},
    )
    ready(erin, path_of(server, SIGN_PETITION))
    expect(status).to_contain_text(
        f"Petition {petition_id}'s signature log no longer names the witness "
        f"{WITNESS_NAME}, which this browser saw watching it before"
    )
    assert len(asked) == tried and not [item for item in records(erin) if item.get("status") == "held"]
    kept = kept_keys(erin, petition_id)
    assert kept is not None and kept["witnesses"] == [WITNESS]

    # The witness named and its cosignature there: collected.
    erin.context.unroute(base)
    erin.context.unroute(f"{base}/checkpoints*")
    ready(erin, path_of(server, SIGN_PETITION))
    expect(status).not_to_contain_text("refuses")
    expect(status).not_to_contain_text("witness")
    assert [item for item in records(erin) if item.get("status") == "held" and item["petitionId"] == petition_id]


def test_a_discussion_key_shown_to_one_account_is_refused_by_entry_0(person, server) -> None:
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    spki = base64.urlsafe_b64encode(OTHER.spki()).decode().rstrip("=")

    def own_discussion_key(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**item, "key_id": OTHER.key_id(), "spki": spki}
            if item["petition_id"] == petition_id and item.get("purpose") == "discuss"
            else item
            for item in items
        ]

    fay = person(None)
    asked = token_requests(fay)
    # The wallet answer and the cookie-less list alike (a server telling connections apart): only the log's
    # entry 0, under a checkpoint the witness cosigned, names the real discussion key.
    tailor(fay, WALLET_STATE, lambda state: {**state, "due": own_discussion_key(state["due"])})
    tailor(fay, "**/api/v1/anonymous/keys", own_discussion_key)
    sign_in(fay, new_member(server, "fay"))
    ready(fay, path_of(server, SIGN_PETITION))
    status = fay.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(
        f"This browser refuses petition {petition_id}'s discussion key: it is not the key "
        "the petition's signature log committed to when it opened"
    )
    expect(status).to_contain_text("your anonymous comments")
    assert asked == [] and not [item for item in records(fay) if item.get("status") == "held"]


def test_witnesses_that_lag_behind_the_head_vouch_for_their_newest_checkpoint(person, server) -> None:
    """Witnesses cosign after the batch: a head they have not seen yet is not a refusal. The browser takes the
    newest checkpoint every witness cosigned (entry 0 is in all of them) and collects."""
    from playwright.sync_api import expect

    from app.accounts import service as accounts
    from app.log import service as signature_log
    from app.signatures import service as signatures

    petition_id = petition_id_of(server)
    app = server.app
    email = f"{new_member(server, 'gil')}@example.org"
    with app.state.sessionmaker.begin() as db:  # a colleague signs with a name; the batch makes a new checkpoint
        user = accounts.get_by_email(db=db, email=email)
        assert user is not None
        signatures.sign(
            db=db, rt=app.state.runtime, petition_id=petition_id, user=user, visibility="public", notify_updates=False
        )
    assert signature_log.flush(sessions=app.state.sessionmaker, rt=app.state.runtime) >= 1
    head = live_server.get_json(server, f"/api/v1/petitions/{petition_id}/log")
    assert head["witnesses"] == []  # the witness has not cosigned the head

    hana = person(None)
    asked = token_requests(hana)
    sign_in(hana, new_member(server, "hana"))
    ready(hana, path_of(server, SIGN_PETITION))
    expect(hana.locator("#sign [data-wallet-status]")).not_to_contain_text("refuses")
    assert len(asked) == 1
    assert [item for item in records(hana) if item.get("status") == "held" and item["petitionId"] == petition_id]


def deployment_keys(page: Page) -> dict[str, Any] | None:
    found = [item for item in records(page) if item.get("id") == "deployment-keys"]
    return found[0] if found else None


def saw_another_petition(page: Page, *, witnesses: list[str], discussion_key_named: bool) -> None:
    """This browser's record of what another petition's log on this site showed it (before the wallet starts)."""
    page.goto("/api/v1/csrf")
    page.evaluate(
        PUT_RECORD,
        {
            "id": "deployment-keys",
            "kind": "deployment-keys",
            "witnesses": witnesses,
            "discussionKeyNamed": discussion_key_named,
        },
    )


def test_a_new_petition_is_held_to_the_witnesses_other_petitions_named(person, server) -> None:
    """The deployment's witnesses are one setting: a browser that saw them on one petition requires them of a
    petition it visits for the first time (issue #20 review, F3). Before, each petition was a first visit, on which a
    server naming no witness was believed."""
    from playwright.sync_api import expect

    petition_id = petition_id_of(server)
    ivy = person(None)
    asked = token_requests(ivy)
    saw_another_petition(ivy, witnesses=[WITNESS], discussion_key_named=False)
    base = f"**/api/v1/petitions/{petition_id}/log"
    tailor(ivy, base, lambda head: {**head, "witness_keys": [], "checkpoint": without_witness(head["checkpoint"])})
    tailor(
        ivy,
        f"{base}/checkpoints*",
        lambda page: {"checkpoints": [without_witness(note) for note in page["checkpoints"]]},
    )
    sign_in(ivy, new_member(server, "ivy"))
    ready(ivy, path_of(server, SIGN_PETITION))
    status = ivy.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(
        f"Petition {petition_id}'s signature log does not name the witness {WITNESS_NAME}, "
        "which this browser saw watching this site's other petitions"
    )
    assert asked == [] and not [item for item in records(ivy) if item.get("status") == "held"]
    assert kept_keys(ivy, petition_id) is None

    # The honest log: collected, and what it showed is kept for every petition of the site.
    ivy.context.unroute(base)
    ivy.context.unroute(f"{base}/checkpoints*")
    ready(ivy, path_of(server, SIGN_PETITION))
    expect(status).not_to_contain_text("refuses")
    expect(status).not_to_contain_text("witness")
    assert len(asked) == 1
    assert deployment_keys(ivy) == {
        "id": "deployment-keys",
        "kind": "deployment-keys",
        "witnesses": [WITNESS],
        "discussionKeyNamed": True,
        "signerKeyNamed": True,  # entry 0 names the signers' key too (issue #25)
    }


def test_a_new_petition_whose_entry_0_omits_the_discussion_key_is_refused_once_the_site_named_one(
    person, server
) -> None:
    """The downgrade (issue #20 review, F2): the operator serves a petition's log as if opened before entry 0 named
    the discussion key (entry 0 without the field, signed with the deployment's log key and cosigned), and shows
    this worker a discussion key of their own, in the cookie-less list too. A browser that saw this site's logs
    name their discussion key refuses it; before, the missing field was read as an old log, with no key to hold."""
    from playwright.sync_api import expect

    from app.core import b64url, merkle
    from app.log import service as signature_log
    from app.log.verifier import encode

    petition_id = petition_id_of(server)
    log = f"/api/v1/petitions/{petition_id}/log"
    head = live_server.get_json(server, log)
    first = live_server.get_json(server, f"{log}/entries?start=0&limit=1")["entries"][0]["entry"]
    entry = json.loads(b64url.decode(first))
    assert entry.pop("discussion_key_id")  # this petition's real entry 0 names its discussion key
    leaf = encode(entry)
    origin = str(head["origin"])
    note = notes.sign(
        notes.Checkpoint(origin=origin, size=1, root=merkle.leaf_hash(leaf)),
        origin,
        signature_log.signing_key(server.app.state.runtime),
    )
    note += notes.cosign(note, WITNESS_NAME, WITNESS_KEY, 1796000000)
    spki = base64.urlsafe_b64encode(OTHER.spki()).decode().rstrip("=")

    def own_discussion_key(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**item, "key_id": OTHER.key_id(), "spki": spki}
            if item["petition_id"] == petition_id and item.get("purpose") == "discuss"
            else item
            for item in items
        ]

    def answer(body: object):
        return lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    jo = person(None)
    asked = token_requests(jo)
    saw_another_petition(jo, witnesses=[WITNESS], discussion_key_named=True)
    jo.context.route(f"**{log}", answer({**head, "size": 1, "checkpoint": note}))
    jo.context.route(f"**{log}/entries*", answer({"size": 1, "entries": [{"index": 0, "entry": b64url.encode(leaf)}]}))
    jo.context.route(f"**{log}/inclusion*", answer({"index": 0, "size": 1, "proof": []}))
    jo.context.route(
        f"**{log}/checkpoints*",
        lambda route: answer({"checkpoints": [note] if "after=0&" in route.request.url else []})(route),
    )
    tailor(jo, WALLET_STATE, lambda state: {**state, "due": own_discussion_key(state["due"])})
    tailor(jo, "**/api/v1/anonymous/keys", own_discussion_key)
    sign_in(jo, new_member(server, "jo"))
    ready(jo, path_of(server, SIGN_PETITION))
    status = jo.locator("#sign [data-wallet-status]")
    expect(status).to_contain_text(
        f"This browser refuses petition {petition_id}'s discussion key: entry 0 of the "
        "petition's signature log does not name it, though this site's logs named their "
        "discussion key before"
    )
    assert asked == [] and not [item for item in records(jo) if item.get("status") == "held"]
    assert "discuss" not in (kept_keys(jo, petition_id) or {}).get("keys", {})
