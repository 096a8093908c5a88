"""In a real browser: answering polls from the wallet (issue #25, assets/src/ballot.js).

A member answers a members' poll with the poll's credential from the wallet's bundle, then changes the answer; an
anonymous signer and a named signer answer a signers' poll by exchanging their signer credential. Each answer goes
without cookies, and the poll's public log shows the credential and the choice, never an account."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from app.core import b64url, blindrsa
from tests import live_server
from tests.conftest import sign_in_demo
from tests.test_browser_wallet_devices import records

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PETITION = "Publish the salary bands for every role"  # demo: open, anonymity allowed, Ana signed with her name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("browser") / "ballots.db")
    try:
        yield live
    finally:
        live.stop()


def create_ballot(page: Page, **fields: Any) -> dict[str, Any]:
    """A poll made through the API, as its author's browser would."""
    csrf = page.request.get("/api/v1/csrf").json()["csrf_token"]
    closes = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    reply = page.request.post("/api/v1/ballots", data={"closes_at": closes, **fields}, headers={"X-CSRF-Token": csrf})
    assert reply.status == 201, reply.text()
    return reply.json()


def answers_in_log(server: live_server.LiveServer, ballot_id: int) -> list[dict[str, Any]]:
    """The answer entries of the poll's log, as counted. Read from the server's own tables: the public log shows
    its answers only with the result (after the close, or live above the minimum), and these polls are open."""
    from sqlalchemy import select

    from app.models.ballots import BallotLeaf

    with server.app.state.sessionmaker() as db:
        rows = db.scalars(select(BallotLeaf.entry).where(BallotLeaf.ballot_id == ballot_id).order_by(BallotLeaf.index))
        entries = [json.loads(entry) for entry in rows]
    return [entry for entry in entries if entry["kind"] == "answer"]


def recovery_code(page: Page) -> str:
    """The code the wallet page shows once "Show my recovery code" is pressed (it is made in the page's script,
    after the click: read it only once it is there)."""
    from playwright.sync_api import expect

    shown = page.locator("[data-recovery-code]")
    expect(shown).to_have_text(re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){6}$"))
    return shown.inner_text()


def cookies_sent(page: Page, path: str) -> list[bool]:
    """For every POST to `path` from now on: whether it carried a cookie."""
    seen: list[bool] = []
    page.on(
        "request",
        lambda request: (
            seen.append("cookie" in request.all_headers())
            if request.method == "POST" and request.url.endswith(path)
            else None
        ),
    )
    return seen


def open_poll(page: Page, ballot_id: int) -> None:
    """The poll's page, once ballot.js is done; its answer form shown (else the status line's words fail the test)."""
    from playwright.sync_api import expect

    page.goto(f"/polls/{ballot_id}")
    expect(page.locator("html")).to_have_attribute("data-ballot-ready", "true")
    assert page.locator("form[data-ballot-form]").is_visible(), page.locator("[data-ballot-status]").inner_text()


def test_a_member_answers_a_members_poll_and_changes_the_answer(person, server) -> None:
    from playwright.sync_api import expect

    riley = person("riley")
    ballot = create_ballot(
        riley, kind="single", question="Should the office open on Saturdays?", options=["Yes", "No", "Only in summer"]
    )
    # Dara: a member with no wallet yet (each person's wallet lives in one browser of this module's tests).
    dara = person("dara")
    sent = cookies_sent(dara, f"/api/v1/ballots/{ballot['id']}/answers")
    open_poll(dara, ballot["id"])
    form = dara.locator("form[data-ballot-form]")
    status = dara.locator("[data-ballot-status]")
    expect(form).to_be_visible()
    expect(dara.locator("[data-ballot-needs-js]")).to_be_hidden()

    form.get_by_label("No").check()
    form.get_by_role("button", name="Send my answer anonymously").click()
    expect(status).to_contain_text('Your answer is in; it is counted now. You chose "No".')
    expect(status).to_be_focused()
    (first,) = answers_in_log(server, ballot["id"])
    assert first["choice"] == [1] and first["revision"] == 1

    form.get_by_label("Only in summer").check()
    form.get_by_role("button", name="Change my answer").click()
    expect(status).to_contain_text('Your new answer is in; it is counted now. You chose "Only in summer".')
    answers = answers_in_log(server, ballot["id"])
    assert [(entry["revision"], entry["choice"]) for entry in answers] == [(1, [1]), (2, [2])]
    assert answers[0]["message"] == answers[1]["message"]  # one credential: the change supersedes the first
    assert live_server.get_json(server, f"/api/v1/ballots/{ballot['id']}")["answers_counted"] == 1
    assert sent == [False, False]  # both answers went without cookies

    # Back on the page later: this device shows its last answer and offers to change it.
    open_poll(dara, ballot["id"])
    expect(status).to_contain_text('You answered "Only in summer" from this device.')
    expect(form.get_by_label("Only in summer")).to_be_checked()
    # Nothing chosen is said in words before anything is sent.
    form.evaluate("form => form.querySelectorAll('[name=choice]').forEach((box) => { box.checked = false; })")
    form.get_by_role("button", name="Change my answer").click()
    expect(status).to_have_text("Choose an option first.")
    assert sent == [False, False]

    # A ranked poll: one select per rank; a repeat is said in words, and the answer goes in rank order.
    ranked = create_ballot(
        riley, kind="ranked", question="Which perk first?", options=["Lunch", "Bikes", "Gym"], max_choices=3
    )
    open_poll(dara, ranked["id"])
    form = dara.locator("form[data-ballot-form]")
    form.get_by_label("Choice 1").select_option(label="Gym")
    form.get_by_label("Choice 2").select_option(label="Gym")
    form.get_by_role("button", name="Send my answer anonymously").click()
    expect(status).to_have_text('Each option takes one rank only: "Gym" is ranked twice.')
    form.get_by_label("Choice 2").select_option(label="Lunch")
    form.get_by_role("button", name="Send my answer anonymously").click()
    expect(status).to_contain_text('Your answer is in; it is counted now. You chose 1. "Gym", 2. "Lunch".')
    (entry,) = answers_in_log(server, ranked["id"])
    assert entry["choice"] == [2, 0]


def test_an_anonymous_and_a_named_signer_answer_a_signers_poll(person, server) -> None:
    from playwright.sync_api import expect

    # Chen signs anonymously: the same cookie-less request asks for his signer credential, blind.
    chen = person("chen")
    petition_id = int(live_server.petition_url(server, PETITION).rsplit("/", 1)[1])
    chen.goto(f"/petitions/{petition_id}")
    expect(chen.locator("html")).to_have_attribute("data-wallet-ready", "true")
    panel = chen.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    panel.get_by_label("I understand that I could be identified by counting").check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(panel.locator("[data-anonymous-status]")).to_contain_text("You signed anonymously")

    ben = person("ben")  # the petition's creator: its organizer
    ballot = create_ballot(
        ben,
        petition_id=petition_id,
        kind="single",
        audience="signers",
        question="Should we ask for the bands by the end of the quarter?",
        options=["Yes", "No"],
    )

    for signer, choice in ((chen, "Yes"), (person("ana"), "No")):  # anonymous, then named
        sent = cookies_sent(signer, f"/api/v1/ballots/{ballot['id']}/exchange")
        open_poll(signer, ballot["id"])
        form = signer.locator("form[data-ballot-form]")
        form.get_by_label(choice).check()
        form.get_by_role("button", name="Send my answer anonymously").click()
        expect(signer.locator("[data-ballot-status]")).to_contain_text(
            f'Your answer is in; it is counted now. You chose "{choice}".'
        )
        assert sent == [False]

    shown = live_server.get_json(server, f"/api/v1/ballots/{ballot['id']}")
    assert shown["credentials_issued"] == 2 and shown["answers_counted"] == 2
    assert sorted(entry["choice"] for entry in answers_in_log(server, ballot["id"])) == [[0], [1]]

    # Chen's phone, given his recovery code, makes the same poll credential: its signer credential from the reply
    # the server kept under his anonymous signature's nullifier, and the exchange answers the same request alike.
    # His answer there replaces the laptop's: one credential, one counted answer.
    chen.goto("/wallet")
    chen.locator("main").get_by_role("button", name="Show my recovery code").click()
    code = recovery_code(chen)
    phone = person("chen")
    phone.goto("/wallet")
    phone.locator("main").get_by_role("textbox", name="Recovery code").fill(code)
    phone.locator("main").get_by_role("button", name="Use this recovery code").click()
    expect(phone.locator("[data-recovery-result]")).to_contain_text("this device now holds your wallet", timeout=30_000)
    open_poll(phone, ballot["id"])
    phone.locator("form[data-ballot-form]").get_by_label("No").check()
    phone.locator("form[data-ballot-form]").get_by_role("button", name="Send my answer anonymously").click()
    expect(phone.locator("[data-ballot-status]")).to_contain_text(
        'Your answer is in; it is counted now. You chose "No".'
    )
    answers = answers_in_log(server, ballot["id"])
    chens = [entry for entry in answers if entry["message"] == answers[0]["message"]]
    assert [(entry["revision"], entry["choice"]) for entry in chens] == [(1, [0]), (2, [1])]
    shown = live_server.get_json(server, f"/api/v1/ballots/{ballot['id']}")
    assert shown["credentials_issued"] == 2 and shown["answers_counted"] == 2


def test_a_poll_key_shown_to_one_account_alone_is_refused_and_costs_no_signature(person, server) -> None:
    """The attacker's method: the server hands one account, in its wallet's bundle, a poll key of its own, so that
    the credential it signs (and the answer sent with it) says whose it is. The cookie-less record of the poll and
    entry 0 of the poll's log name the real key: the browser asks for nothing under the other, says why, and still
    collects the petitions' credentials due."""
    from playwright.sync_api import expect

    ballot = create_ballot(
        person("riley"), kind="single", question="Is the new rota workable?", options=["Yes", "No", "Not sure"]
    )
    other = blindrsa.PrivateKey.generate(1024).public
    spki = b64url.encode(other.spki())

    def own_key(route) -> None:
        state = route.fetch().json()
        due = [
            {**item, "key_id": other.key_id(), "spki": spki} if item.get("ballot_id") == ballot["id"] else item
            for item in state["due"]
        ]
        route.fulfill(status=200, content_type="application/json", body=json.dumps({**state, "due": due}))

    morgan = person(None)
    morgan.context.route(re.compile(r"/api/v1/wallet(\?[^/]*)?$"), own_key)
    asked: list[list[dict[str, Any]]] = []
    morgan.on(
        "request",
        lambda request: (
            asked.append(request.post_data_json["tokens"])
            if request.method == "POST" and request.url.endswith("/api/v1/wallet/tokens")
            else None
        ),
    )
    sign_in_demo(morgan, "morgan")
    morgan.goto(f"/polls/{ballot['id']}")
    expect(morgan.locator("html")).to_have_attribute("data-ballot-ready", "true")
    expect(morgan.locator("[data-ballot-status]")).to_contain_text(
        f"This browser refuses poll {ballot['id']}'s key: it differs from the key the poll shows everyone"
    )
    expect(morgan.locator("form[data-ballot-form]")).to_be_hidden()
    purposes = [item["purpose"] for request in asked for item in request]
    assert "ballot" not in purposes and "sign" in purposes, asked
    kept = {item["id"]: item for item in records(morgan)}
    assert not [key for key in kept if ":ballot:" in key], kept


def test_a_named_signers_new_device_answers_a_signers_poll_after_the_petition_closed(person, server) -> None:
    """A ratification opens after leadership's response, often once the petition has closed: its signers' key is no
    longer among the open keys. A named signer's new device still rebuilds the signer credential the account was
    issued, accepts its key because entry 0 of the petition's log names it, and answers."""
    from playwright.sync_api import expect

    from tests.test_browser_key_transparency import new_member

    petition_id = int(live_server.petition_url(server, "Stop recording our screens to train AI").rsplit("/", 1)[1])
    laptop = person(new_member(server, "gus"))
    laptop.goto(f"/petitions/{petition_id}")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    laptop.locator("#sign").get_by_role("button", name="Sign this petition").click()
    expect(laptop.locator("#sign")).to_contain_text("You signed on")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")  # the signer credential, collected
    laptop.goto("/wallet")
    laptop.locator("main").get_by_role("button", name="Show my recovery code").click()
    code = recovery_code(laptop)
    assert [item for item in records(laptop) if item.get("purpose") == "signer" and item.get("status") == "held"]

    ana = person("ana")  # the petition's creator closes it, then asks its signers
    csrf = ana.request.get("/api/v1/csrf").json()["csrf_token"]
    closed = ana.request.post(f"/api/v1/petitions/{petition_id}/close", headers={"X-CSRF-Token": csrf})
    assert closed.status == 200, closed.text()
    open_keys = live_server.get_json(server, "/api/v1/anonymous/keys")
    assert not [key for key in open_keys if key.get("petition_id") == petition_id]
    ballot = create_ballot(
        ana,
        petition_id=petition_id,
        kind="single",
        audience="signers",
        question="Does leadership's answer meet our petition?",
        options=["Yes", "Partly", "No"],
    )

    phone = person("gus")
    phone.goto("/wallet")
    phone.locator("main").get_by_role("textbox", name="Recovery code").fill(code)
    phone.locator("main").get_by_role("button", name="Use this recovery code").click()
    expect(phone.locator("[data-recovery-result]")).to_contain_text("this device now holds your wallet", timeout=30_000)
    open_poll(phone, ballot["id"])
    phone.locator("form[data-ballot-form]").get_by_label("Partly").check()
    phone.locator("form[data-ballot-form]").get_by_role("button", name="Send my answer anonymously").click()
    expect(phone.locator("[data-ballot-status]")).to_contain_text(
        'Your answer is in; it is counted now. You chose "Partly".'
    )
    # Counted (the log publishes the answer leaves only with the result, after the close).
    shown = live_server.get_json(server, f"/api/v1/ballots/{ballot['id']}")
    assert shown["credentials_issued"] == 1 and shown["answers_counted"] == 1


def test_an_anonymous_signers_new_device_answers_a_signers_poll_after_the_petition_closed(person, server) -> None:
    """The usual ratification: an anonymous signer's phone must finalize the signer reply the server kept under the
    signature's nullifier, under the petition's signers' key, which no open key lists once the petition closed.
    The poll names that key (GET /api/v1/ballots/{id}: signer_key), ballot.js holds it to entry 0 of the
    petition's log, and the phone answers. Last in this module: it closes the salary-bands petition."""
    from playwright.sync_api import expect

    from tests.test_browser_key_transparency import new_member

    petition_id = int(live_server.petition_url(server, PETITION).rsplit("/", 1)[1])
    laptop = person(new_member(server, "ida"))
    laptop.goto(f"/petitions/{petition_id}")
    expect(laptop.locator("html")).to_have_attribute("data-wallet-ready", "true")
    panel = laptop.locator("#sign")
    panel.get_by_label("Nobody: sign anonymously").check()
    understood = panel.get_by_label("I understand that I could be identified by counting")
    if understood.count():  # asked only while the petition has few anonymous signatures
        understood.check()
    panel.get_by_role("button", name="Sign this petition").click()
    expect(panel.locator("[data-anonymous-status]")).to_contain_text("You signed anonymously")
    laptop.goto("/wallet")
    laptop.locator("main").get_by_role("button", name="Show my recovery code").click()
    code = recovery_code(laptop)

    ben = person("ben")  # the petition's creator closes it, then asks its signers
    csrf = ben.request.get("/api/v1/csrf").json()["csrf_token"]
    closed = ben.request.post(f"/api/v1/petitions/{petition_id}/close", headers={"X-CSRF-Token": csrf})
    assert closed.status == 200, closed.text()
    open_keys = live_server.get_json(server, "/api/v1/anonymous/keys")
    assert not [key for key in open_keys if key["purpose"] == "signer" and key.get("petition_id") == petition_id]
    ballot = create_ballot(
        ben,
        petition_id=petition_id,
        kind="single",
        audience="signers",
        question="Does leadership's answer on the salary bands meet our petition?",
        options=["Yes", "Partly", "No"],
    )
    assert ballot["signer_key"] and ballot["signer_key"]["key_id"]

    phone = person("ida")
    phone.goto("/wallet")
    phone.locator("main").get_by_role("textbox", name="Recovery code").fill(code)
    phone.locator("main").get_by_role("button", name="Use this recovery code").click()
    expect(phone.locator("[data-recovery-result]")).to_contain_text("this device now holds your wallet", timeout=30_000)
    sent = cookies_sent(phone, f"/api/v1/ballots/{ballot['id']}/exchange")
    open_poll(phone, ballot["id"])
    phone.locator("form[data-ballot-form]").get_by_label("Partly").check()
    phone.locator("form[data-ballot-form]").get_by_role("button", name="Send my answer anonymously").click()
    expect(phone.locator("[data-ballot-status]")).to_contain_text(
        'Your answer is in; it is counted now. You chose "Partly".'
    )
    assert sent == [False]
    # Counted (the log publishes the answer leaves only with the result, after the close).
    shown = live_server.get_json(server, f"/api/v1/ballots/{ballot['id']}")
    assert shown["credentials_issued"] == 1 and shown["answers_counted"] == 1


def test_a_member_counts_the_answer_under_their_group_for_the_breakdown(person, server) -> None:
    """A poll put to two groups: the wallet's form offers the member's own group with the number its answer then
    hides among, "no group" chosen first; the group goes with the answer, without cookies, and comes back checked."""
    from datetime import date

    from playwright.sync_api import expect
    from sqlalchemy import select

    from app.accounts.service.addresses import get_by_email
    from app.ballots import answers, audiences
    from app.models.ballots import BallotAnswer, BallotIssuance
    from app.models.signatures import GroupKind
    from app.signatures import groups as signer_groups
    from tests.test_browser_key_transparency import new_member

    names = [new_member(server, f"plat{i}") for i in range(5)] + [new_member(server, f"nant{i}") for i in range(5)]
    with server.app.state.write_sessionmaker() as db, db.begin():
        platform = signer_groups.add(
            db=db, rt=server.app.state.runtime, kind=GroupKind.department, name="Platform team"
        )
        nantes = signer_groups.add(db=db, rt=server.app.state.runtime, kind=GroupKind.location, name="Nantes office")
        db.flush()
        people = {name: get_by_email(db=db, email=f"{name}@example.org") for name in names}
        for name, user in people.items():
            assert user is not None
            here = name.startswith("plat")
            audiences.set_member_groups(
                db=db,
                user=user,
                department=str(platform.id) if here else None,
                location=None if here else str(nantes.id),
            )
        platform_id, nantes_id = platform.id, nantes.id
    ballot = create_ballot(
        person("riley"),
        kind="single",
        audience="groups",
        groups=[platform_id, nantes_id],
        question="Should the platform team move to Nantes?",
        options=["Yes", "No"],
    )
    assert ballot["breakdown"] is True
    with server.app.state.write_sessionmaker() as db, db.begin():  # four colleagues collected it already
        db.add_all(
            BallotIssuance(account_id=people[name].id, ballot_id=ballot["id"], issued_on=date.today())  # type: ignore[union-attr]
            for name in names[1:5]
        )

    member = person(names[0])
    sent = cookies_sent(member, f"/api/v1/ballots/{ballot['id']}/answers")
    open_poll(member, ballot["id"])  # the wallet collects this poll's credential: the fifth holder
    open_poll(member, ballot["id"])
    form = member.locator("form[data-ballot-form]")
    expect(form.get_by_label("No group: your answer hides among")).to_be_checked()
    group = form.get_by_label("Platform team: your answer hides among 5 people of Platform team")
    expect(group).to_be_enabled()
    assert form.get_by_label("Nantes office", exact=False).count() == 0  # not one of this member's groups
    form.get_by_label("No", exact=True).check()
    group.check()
    form.get_by_role("button", name="Send my answer anonymously").click()
    expect(member.locator("[data-ballot-status]")).to_contain_text(
        'Your answer is in; it is counted now. You chose "No".'
    )
    assert sent == [False]
    with server.app.state.sessionmaker() as db:
        (row,) = db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot["id"]))
        assert answers.answer_group(server.app.state.runtime, row) == platform_id
    (entry,) = answers_in_log(server, ballot["id"])
    assert set(entry) == {"kind", "message", "signature", "revision", "choice"}  # no group in the public leaf
    open_poll(member, ballot["id"])
    expect(form.get_by_label("Platform team: your answer hides among")).to_be_checked()
