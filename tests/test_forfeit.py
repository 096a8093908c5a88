"""No worker is locked out of signing (issue 19): one who was issued a petition's anonymous-signing token in one
browser may sign from another device with their name, giving up signing that petition anonymously. The forfeit
burns the issuance, moves a public count and puts a counted entry naming nobody in the signature log; anyone
can then check anonymous signatures <= tokens issued - spent by name - forfeited, and `undersigned verify` prints
the number of forfeits: the most that dishonest forfeits could add."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.clients import log as log_client
from app.core import b64url
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.log import service as signature_log
from app.models.accounts import User
from app.models.anonymous import IssuingKey, TokenIssuance
from app.models.log import LogLeaf
from app.models.petitions import Petition
from app.petitions import service as petitions
from tests import factories
from tests.conftest import Browser, count_rows, make_settings, sign_in_as
from tests.test_anonymous import count, open_anonymous, submit, wallet
from tests.test_withdrawal_burn import named

NewBrowser = Callable[[], Browser]
CHOICE = "I give up signing this petition anonymously"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def anonymous_client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        yield client


def counts(db: Session, petition_id: int) -> dict[str, int]:
    db.expire_all()
    key = db.get_one(IssuingKey, petition_id)
    return {
        "issued": key.tokens_issued,
        "spent_by_name": key.spent_by_name,
        "forfeited": key.forfeited,
        "anonymous": key.anonymous_signatures,
    }


def burned(db: Session, user_id: int, petition_id: int) -> bool:
    db.expire_all()
    return db.get_one(TokenIssuance, (user_id, petition_id)).burned


def log_entries(db: Session, petition_id: int) -> list[bytes]:
    db.expire_all()
    return [
        bytes(row.entry) for row in db.query(LogLeaf).filter(LogLeaf.petition_id == petition_id).order_by(LogLeaf.index)
    ]


def run_verify(client: TestClient, petition_id: int, folder: Path):
    """`undersigned verify --offline` on what the public API serves, read without cookies as `download` reads it."""
    client.cookies.clear()
    base = f"/api/v1/petitions/{petition_id}/log"
    head = client.get(base).json()
    entries = [item["entry"] for item in client.get(f"{base}/entries?start=0&limit=1000").json()["entries"]]
    checkpoints = client.get(f"{base}/checkpoints?after=0&limit=1000").json()["checkpoints"]
    log_client.save(
        {
            "url": f"http://testserver/petitions/{petition_id}",
            "petition_id": petition_id,
            "head": head,
            "entries": entries[: head["size"]],
            "checkpoints": checkpoints,
        },
        folder / "saved",
    )
    return CliRunner().invoke(
        cli,
        ["verify", "--offline", str(folder / "saved"), "--state", str(folder / "state.json")],
        catch_exceptions=False,
    )


def worker_with_token_in_browser_a(
    db: Session, new_browser: NewBrowser, petition: Petition
) -> tuple[User, tuple[bytes, bytes], Browser]:
    """A worker whose wallet in browser A collected the petition's token; browser B is fresh and holds none."""
    worker = factories.worker(db)
    tokens, response = wallet(sign_in_as(new_browser(), db, worker))
    assert response.status_code == 200 and petition.id in tokens
    browser_b = sign_in_as(new_browser(), db, worker)
    assert browser_b.get("/api/v1/wallet").json()["due"] == []  # nothing to collect: it was issued already
    return worker, tokens[petition.id], browser_b


def test_a_worker_without_their_token_forfeits_and_signs_by_name(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
    tmp_path: Path,
) -> None:
    petition = open_anonymous(db, rt)
    wallet(sign_in_as(new_browser(), db, factories.worker(db)))  # a colleague who holds a token and waits
    worker, _token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    path = f"/api/v1/petitions/{petition.id}/signature"
    before = anonymous_client.get(f"/api/v1/petitions/{petition.id}/anonymity").json()["signing"]
    assert before == 2

    # Without the token and without the choice: no dead end, the refusal names the way out. Nothing is written.
    refused = browser_b.api("POST", path, {"visibility": "organizers"})
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert CHOICE in message and '"forfeit": true' in message and "undersigned client" in message
    assert counts(db, petition.id)["forfeited"] == 0 and count_rows(db, "log_pending") == 0
    assert not burned(db, worker.id, petition.id)

    signed = browser_b.api("POST", path, {"visibility": "organizers", "forfeit": True})
    assert signed.status_code == 201, signed.text
    assert count(db, petition) == 1
    assert counts(db, petition.id) == {"issued": 2, "spent_by_name": 0, "forfeited": 1, "anonymous": 0}
    assert burned(db, worker.id, petition.id)
    # A second forfeit is a second signature: the usual refusal, and no count moves.
    again = browser_b.api("POST", path, {"visibility": "organizers", "forfeit": True})
    assert again.status_code == 409 and "already signed" in again.json()["error"]["message"]
    assert counts(db, petition.id)["forfeited"] == 1

    # The log gets a counted entry with nothing in it but its kind, appended with the next batch.
    assert signature_log.flush(sessions=sessions, rt=rt) == 3  # and the batch's issuance totals (issue #20)
    entries = log_entries(db, petition.id)
    assert entries.count(b'{"kind":"forfeit"}') == 1
    assert sorted(json.loads(entry)["kind"] for entry in entries[1:]) == ["forfeit", "issuance", "signature"]

    # Everyone sees the count, and the anonymity set drops by the forfeiter.
    ledger = anonymous_client.get(f"/api/v1/petitions/{petition.id}/anonymous-signatures").json()
    assert (ledger["tokens_issued"], ledger["spent_by_name"], ledger["forfeited"]) == (2, 0, 1)
    assert ledger["anonymous_signatures"] <= ledger["tokens_issued"] - ledger["spent_by_name"] - ledger["forfeited"]
    assert anonymous_client.get(f"/api/v1/petitions/{petition.id}/anonymity").json()["signing"] == before - 1
    head = anonymous_client.get(f"/api/v1/petitions/{petition.id}/log").json()
    assert head["issuing_key"]["forfeited"] == 1 and head["issuing_key"]["spent_by_name"] == 0
    page = anonymous_client.get(f"/petitions/{petition.id}").text
    assert "1 forfeited by a colleague who signed with their name without it" in page

    result = run_verify(anonymous_client, petition.id, tmp_path)
    assert result.exit_code == 0, result.output
    assert "PASS: tally 1" in result.output
    assert "0 anonymous <= 2 tokens issued - 0 spent by name - 1 forfeited (slack 1)" in result.output
    assert "forfeits: 1, the most a dishonest forfeit could add" in result.output


def test_the_forfeit_names_nobody_and_dates_nothing(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    worker, _token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    issuance_before = dict(
        db.execute(text("SELECT * FROM token_issuances WHERE account_id = :a"), {"a": worker.id}).mappings().one()
    )
    assert (
        browser_b.api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public", "forfeit": True}
        ).status_code
        == 201
    )
    # The pending log entry is its kind alone; the issuance changed only in `burned` (no time, nothing else).
    (pending,) = db.execute(text("SELECT * FROM log_pending")).mappings().all()
    assert bytes(pending["entry"]) == b'{"kind":"forfeit"}' and set(pending) == {"id", "petition_id", "entry"}
    issuance_after = dict(
        db.execute(text("SELECT * FROM token_issuances WHERE account_id = :a"), {"a": worker.id}).mappings().one()
    )
    assert {name for name in issuance_after if issuance_after[name] != issuance_before[name]} == {"burned"}
    key_columns = set(db.execute(text("SELECT * FROM issuing_keys")).mappings().one().keys())
    assert "forfeited" in key_columns and not any("forfeit" in name and name != "forfeited" for name in key_columns)


def test_a_dishonest_forfeit_is_accepted_and_bounded_by_the_published_count(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
    tmp_path: Path,
) -> None:
    """The issuance is burned, but the server never knew the token's nullifier, so the token still signs
    anonymously from the device that holds it and counts. That is what the forfeit count bounds: with one more
    colleague holding a token the honest bound still holds, with no slack left, and verify shows the count."""
    petition = open_anonymous(db, rt)
    wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    _worker, token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    assert (
        browser_b.api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "organizers", "forfeit": True}
        ).status_code
        == 201
    )
    accepted = submit(anonymous_client, petition.id, token)
    assert accepted.status_code == 202, accepted.text
    assert count(db, petition) == 2
    assert counts(db, petition.id) == {"issued": 2, "spent_by_name": 0, "forfeited": 1, "anonymous": 1}
    signature_log.flush(sessions=sessions, rt=rt)
    result = run_verify(anonymous_client, petition.id, tmp_path)
    assert result.exit_code == 0, result.output
    assert "1 anonymous <= 2 tokens issued - 0 spent by name - 1 forfeited (slack 0)" in result.output
    assert "forfeits: 1, the most a dishonest forfeit could add" in result.output


def test_a_dishonest_forfeit_past_the_bound_fails_verify(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions: sessionmaker[Session],
    anonymous_client: TestClient,
    tmp_path: Path,
) -> None:
    """The only token holder forfeits and then signs anonymously too: the bound breaks by one, and verify says
    that a forfeit could explain it."""
    petition = open_anonymous(db, rt)
    _worker, token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    assert (
        browser_b.api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "organizers", "forfeit": True}
        ).status_code
        == 201
    )
    assert submit(anonymous_client, petition.id, token).status_code == 202
    signature_log.flush(sessions=sessions, rt=rt)
    result = run_verify(anonymous_client, petition.id, tmp_path)
    assert result.exit_code == 1
    assert "1 signature too many, which 1 forfeit could explain" in result.output
    assert "FAIL" in result.output and "forfeits: 1" in result.output


def test_the_forfeited_token_is_never_spent_by_name(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    _worker, token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    path = f"/api/v1/petitions/{petition.id}/signature"
    assert browser_b.api("POST", path, {"visibility": "public", "forfeit": True}).status_code == 201
    assert browser_b.api("DELETE", path).status_code == 204
    # Signing again by name, even with the old token, spends nothing: the issuance is burned.
    assert browser_b.api("POST", path, named(token)).status_code == 201
    assert counts(db, petition.id) == {"issued": 1, "spent_by_name": 0, "forfeited": 1, "anonymous": 0}
    assert count_rows(db, "spent_tokens") == 0


def test_a_token_sent_along_wins_over_the_forfeit(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    tokens, _ = wallet(member)
    body = {**named(tokens[petition.id]), "forfeit": True}
    assert member.api("POST", f"/api/v1/petitions/{petition.id}/signature", body).status_code == 201
    assert counts(db, petition.id) == {"issued": 1, "spent_by_name": 1, "forfeited": 0, "anonymous": 0}
    assert count_rows(db, "log_pending") == 0


def test_a_forfeit_with_nothing_to_forfeit_is_a_named_signature(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))  # no wallet ran: no token was ever issued
    assert (
        member.api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public", "forfeit": True}
        ).status_code
        == 201
    )
    assert count(db, petition) == 1
    assert counts(db, petition.id) == {"issued": 0, "spent_by_name": 0, "forfeited": 0, "anonymous": 0}
    assert count_rows(db, "log_pending") == 0
    # And on a petition that takes no anonymous signatures at all.
    plain = factories.open_petition(db, rt, title="Fix the coffee machine")
    assert (
        member.api(
            "POST", f"/api/v1/petitions/{plain.id}/signature", {"visibility": "public", "forfeit": True}
        ).status_code
        == 201
    )


def test_a_forfeit_on_a_closed_petition_is_refused_and_forfeits_nothing(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    worker, _token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    petitions.close(db=db, rt=rt, petition=petition, actor=None, reason="The organizers closed it.")
    db.commit()
    refused = browser_b.api(
        "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public", "forfeit": True}
    )
    assert refused.status_code == 409 and "closed" in refused.json()["error"]["message"]
    assert counts(db, petition.id)["forfeited"] == 0 and not burned(db, worker.id, petition.id)
    assert b'{"kind":"forfeit"}' not in [
        bytes(row) for row in db.execute(text("SELECT entry FROM log_pending")).scalars()
    ]


def test_a_refused_signature_forfeits_nothing(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    """The forfeit and the signature are one transaction: a signature refused after the forfeit was recorded
    (here, a department that does not exist) leaves no burned issuance, no count and no log entry."""
    petition = factories.open_petition(db, rt, allow_anonymous=True, collect_attributes=True)
    worker, _token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    refused = browser_b.api(
        "POST",
        f"/api/v1/petitions/{petition.id}/signature",
        {"visibility": "public", "forfeit": True, "department_id": 999999},
    )
    assert refused.status_code == 422, refused.text
    assert count(db, petition) == 0 and counts(db, petition.id)["forfeited"] == 0
    assert not burned(db, worker.id, petition.id) and count_rows(db, "log_pending") == 0


def test_the_sign_panel_offers_the_forfeit_without_javascript(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    petition = open_anonymous(db, rt)
    _worker, _token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    page = browser_b.get(f"/petitions/{petition.id}").text
    # It says which ways this device can sign and why, and hides no option.
    assert "You were issued this petition's anonymous-signing token" in page
    assert "open this petition in the browser that holds your wallet" in page
    assert "<code>undersigned client sign</code>" in page
    assert '<input type="checkbox" id="forfeit" name="forfeit" value="1"' in page
    assert CHOICE in page

    # The plain form without the box: refused in words that point to it, nothing written.
    refused = browser_b.post(f"/petitions/{petition.id}/sign", {"visibility": "organizers"})
    assert refused.status_code == 409 and CHOICE in refused.text
    assert count(db, petition) == 0
    # With the box ticked: signed, and told what was given up.
    signed = browser_b.post(f"/petitions/{petition.id}/sign", {"visibility": "organizers", "forfeit": "1"})
    assert signed.status_code == 303
    shown = browser_b.get(signed.headers["location"]).text
    assert "You gave up signing it anonymously" in shown
    assert count(db, petition) == 1 and counts(db, petition.id)["forfeited"] == 1
    assert 'name="forfeit"' not in shown  # signed: nothing more to choose


def test_no_forfeit_is_offered_to_who_has_nothing_to_give_up(new_browser: NewBrowser, db: Session, rt: Runtime) -> None:
    petition = open_anonymous(db, rt)
    member = sign_in_as(new_browser(), db, factories.worker(db))
    assert 'name="forfeit"' not in member.get(f"/petitions/{petition.id}").text  # never issued
    path = f"/api/v1/petitions/{petition.id}/signature"
    tokens, _ = wallet(member)
    assert member.api("POST", path, named(tokens[petition.id])).status_code == 201
    assert member.api("DELETE", path).status_code == 204
    page = member.get(f"/petitions/{petition.id}").text
    assert 'name="forfeit"' not in page and "You may sign again with your name" in page  # spent by name


def test_the_log_entry_decodes_as_the_verifier_reads_it(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions: sessionmaker[Session], anonymous_client: TestClient
) -> None:
    """The entries API serves the forfeit as any entry: base64url of its canonical bytes."""
    petition = open_anonymous(db, rt)
    _worker, _token, browser_b = worker_with_token_in_browser_a(db, new_browser, petition)
    assert (
        browser_b.api(
            "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "public", "forfeit": True}
        ).status_code
        == 201
    )
    signature_log.flush(sessions=sessions, rt=rt)
    served = anonymous_client.get(f"/api/v1/petitions/{petition.id}/log/entries?start=0&limit=10").json()
    assert {"kind": "forfeit"} in [json.loads(b64url.decode(item["entry"])) for item in served["entries"]]


# -- in a real browser, with JavaScript: the wallet in browser A, the forfeit in browser B -----------------------

DEMO_PETITION = "Publish the salary bands for every role"  # demo: open, anonymity allowed, signed by Ana only


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from tests import live_server

    live = live_server.serve_demo(tmp_path_factory.mktemp("forfeit") / "forfeit.db")
    try:
        yield live
    finally:
        live.stop()


@pytest.mark.browser
def test_in_the_browser_a_worker_forfeits_on_a_second_device(person, server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from app import jobs
    from tests import live_server

    def open_petition(page):
        page.goto("/petitions")
        page.locator("main").get_by_role("link", name=DEMO_PETITION).click()
        expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")

    url = live_server.petition_url(server, DEMO_PETITION)
    petition_id = int(url.rsplit("/", 1)[1])
    ledger = f"/api/v1/petitions/{petition_id}/anonymous-signatures"
    before = live_server.get_json(server, ledger)

    laptop = person("chen")  # her wallet collects the petition's token here
    open_petition(laptop)
    expect(laptop.locator("#sign").get_by_label("Nobody: sign anonymously")).to_be_visible()
    phone = person("chen")  # a fresh browser: no token, and none can be issued again
    open_petition(phone)
    panel = phone.locator("#sign")
    expect(panel.get_by_label("Nobody: sign anonymously")).to_be_hidden()
    expect(panel.locator("#token-elsewhere")).to_contain_text(
        "open this petition in the browser that holds your wallet"
    )
    panel.get_by_label("I give up signing this petition anonymously").check()
    panel.get_by_label("Only the organizers").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(phone.locator("main .flashes")).to_contain_text("You gave up signing it anonymously")
    expect(panel).to_contain_text("with your name visible only to the organizers")

    after = live_server.get_json(server, ledger)
    assert after["forfeited"] == int(before["forfeited"]) + 1
    assert after["spent_by_name"] == before["spent_by_name"]
    app = server.app
    jobs.run_once(sessions=app.state.sessionmaker, rt=app.state.runtime)  # the batch appends the forfeit
    result = CliRunner().invoke(cli, ["verify", url, "--state", str(tmp_path / "state.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"forfeits: {after['forfeited']}, the most a dishonest forfeit could add" in result.output
    phone.reload()
    expect(phone.locator(".anonymous-check")).to_contain_text("forfeited by")


@pytest.mark.browser
def test_in_a_browser_without_javascript_the_forfeit_is_a_plain_form(person, server, chromium) -> None:
    """Without JavaScript the server cannot know what the browser holds: the panel says so, the anonymous choice
    is not silently dropped (it says where it works), and the forfeit box and the name choice sign."""
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD
    from tests import live_server

    url = live_server.petition_url(server, DEMO_PETITION)
    laptop = person("dara")  # her wallet collects the petition's token here, with JavaScript
    laptop.goto(url)
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")

    context = chromium.new_context(base_url=server.base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/signin")
        page.locator("main").get_by_label("Work email address").fill("dara@example.org")
        page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        page.goto(url)
        panel = page.locator("#sign")
        expect(panel.locator("#token-elsewhere")).to_contain_text("JavaScript off here")
        expect(panel.get_by_label("Nobody: sign anonymously")).to_be_hidden()
        # Not ticked: refused in words that point to the box, and nothing is signed.
        panel.get_by_label("Everyone").check()
        panel.get_by_role("button", name="Sign this petition").click()
        expect(page.locator("main")).to_contain_text(CHOICE)
        page.goto(url)
        panel.get_by_label("I give up signing this petition anonymously").check()
        panel.get_by_label("Everyone").check()
        panel.get_by_role("button", name="Sign this petition").click()
        expect(page.locator("main .flashes")).to_contain_text("You gave up signing it anonymously")
        expect(panel).to_contain_text("with your name shown")
    finally:
        context.close()


# -- the verifier's reading of forfeits, on a log built by hand ---------------------------------------------------


def test_the_verifier_reads_forfeits_against_the_published_count() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from app.core import blindrsa
    from app.log.verifier import check, encode
    from tests.test_log_verifier import LOG, checkpoint_note, token

    key, log_private = blindrsa.PrivateKey.generate(1024), Ed25519PrivateKey.generate()
    entries = [
        encode(
            {"kind": "petition", "petition": 42, "version": 1, "text_sha256": "ab" * 32, "key_id": key.public.key_id()}
        ),
        encode({"kind": "signature", "visibility": "named", "commitment": "00" * 16}),
        encode({"kind": "forfeit"}),
        encode(token(key)),
    ]

    def verify(log: list[bytes], *, issued: int, forfeited: int):
        return check(
            entries=log,
            checkpoints=[checkpoint_note(log, len(log), log_private)],
            log_key=(LOG, log_private.public_key()),
            issuing_key_spki=key.public.spki(),
            tokens_issued=issued,
            petition_id=42,
            forfeited=forfeited,
        )

    honest = verify(entries, issued=2, forfeited=1)
    assert honest.ok and honest.forfeits == 1 and honest.slack == 0 and honest.tally == 2
    # The head may count a forfeit the next batch has not appended yet; never fewer than the log holds.
    assert verify(entries, issued=3, forfeited=2).ok
    behind = verify(entries, issued=2, forfeited=0)
    assert any("the log holds 1 forfeits but the published count is only 0" in p for p in behind.problems)
    # Past tokens issued - spent by name, no forfeit explains it.
    minted = verify(entries, issued=0, forfeited=1)
    assert any("tokens were made for no member" in p for p in minted.problems)
    # A forfeit entry that says more than its kind (an account, a time) is a problem in itself.
    named = [*entries[:2], encode({"kind": "forfeit", "account": 7}), entries[3]]
    assert any("a forfeit carries more than its kind" in p for p in verify(named, issued=2, forfeited=1).problems)
