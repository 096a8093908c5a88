"""In a real browser: anonymous comments carried by the wallet's discussion credential, never by the session.

The wallet collects the credential with its signing tokens; the comment goes without cookies and waits for its
batch, shown meanwhile to its author alone (from the browser's storage); once published it carries the pseudonym
the credential gives, and only the browser holding the credential offers to edit or delete it. Where the
anonymous choice cannot work (no JavaScript, storage blocked, no credential in this browser), the page says why
and what to do, and the named form still works."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from app.core import b64url
from tests import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PETITION = "Stop recording our screens to train AI"  # demo: open, anonymous comments allowed, a short discussion
COMMENTS = "/api/v1/anonymous/comments"

# The wallet's store as the page sees it (the same database and store wallet.js and comments.js open).
WALLET_RECORDS = """async () => {
    const db = await new Promise((ok, fail) => { const r = indexedDB.open("undersigned-wallet", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("tokens", { keyPath: "id" });
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
    return await new Promise((ok) => { const r = db.transaction("tokens").objectStore("tokens").getAll();
        r.onsuccess = () => ok(r.result); });
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    # Batching on (an hour), and a group smaller than k goes out after one hour's wait: the test runs the batches.
    # Signed-out readers get no shared copy of a page: the test reads, as they do, what changed a moment ago.
    live = live_server.serve_demo(
        tmp_path_factory.mktemp("browser") / "anonymous-comments.db",
        anonymous_batch_seconds=3600,
        anonymous_max_delay_seconds=3600,
        shared_page_seconds=0,
    )
    try:
        yield live
    finally:
        live.stop()


def run_batch(server: live_server.LiveServer) -> int:
    from app.comments import anonymous

    app = server.app
    return anonymous.write_batch(sessions=app.state.sessionmaker, rt=app.state.runtime)


def petition_path(server: live_server.LiveServer) -> str:
    return live_server.petition_url(server, PETITION).removeprefix(server.base_url)


def records(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(WALLET_RECORDS)


def credential(page: Page, petition_id: int) -> dict[str, Any]:
    (held,) = [item for item in records(page) if item.get("purpose") == "discuss" and item["petitionId"] == petition_id]
    return held


def pseudonym_of(message: str) -> str:
    return "Colleague " + hashlib.sha256(b"undersigned/pseudonym/v1" + b64url.decode(message)).hexdigest()[:6]


def signed_in(person, name: str) -> Page:
    """A worker's browser after signing in, once the first page's wallet has collected what was due."""
    from playwright.sync_api import expect

    page = person(name)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", "true")
    return page


def open_discussion(page: Page, path: str) -> None:
    from playwright.sync_api import expect

    page.goto(path)
    expect(page.locator("html")).to_have_attribute("data-wallet-ready", re.compile("."))
    expect(page.locator("[data-anonymous-discussion]")).to_have_attribute("data-anonymous-ready", "true")


def cookieless_html(server: live_server.LiveServer, path: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(server.base_url + path) as reply:
        return reply.read().decode()


def test_an_anonymous_comment_goes_without_cookies_waits_for_its_batch_and_only_its_author_changes_it(
    person, server
) -> None:
    from playwright.sync_api import expect

    path = petition_path(server)
    petition_id = int(path.rsplit("/", 1)[1])
    dara = signed_in(person, "dara")  # her wallet collects too: Chen hides among two colleagues
    chen = signed_in(person, "chen")  # he signed this petition with his name: his signing token is spent
    sent = []
    chen.on("request", lambda request: sent.append(request))
    open_discussion(chen, path)

    # The wallet collected, beside the signing token of the petition he has not signed, a discussion credential
    # for each open petition that takes anonymous comments, and the signer credential of the one he signed with his
    # name (for its signers' polls, issue #25).
    kept = {
        (item["petitionId"], item.get("purpose", "sign")): item["status"]
        for item in records(chen)
        if "petitionId" in item
    }  # the wallet's secret is kept beside them
    open_ids = {item["id"] for item in live_server.get_json(server, "/api/v1/petitions?state=open")["items"]}
    assert {key for key, status in kept.items() if status == "held"} == (
        {(other, "sign") for other in open_ids - {petition_id}}
        | {(each, "discuss") for each in open_ids}
        | {(petition_id, "signer")}
    ), kept
    held = credential(chen, petition_id)
    assert held["id"] == f"{held['account']}:{petition_id}:discuss"
    pseudonym = pseudonym_of(held["message"])

    discussion = chen.locator("#discussion")
    choice = discussion.get_by_label("Post anonymously", exact=True)
    expect(choice).to_be_visible()
    expect(discussion.locator("[data-anonymous-available]")).to_contain_text(
        f"Your comment appears as {pseudonym}", use_inner_text=True
    )
    choice.check()
    # How many colleagues he hides among: everyone who collected this petition's discussion credential, the
    # figure everyone is shown.
    figures = live_server.get_json(server, f"/api/v1/petitions/{petition_id}/anonymity")
    assert figures["discussion"] == 2, figures
    expect(discussion.locator("[data-anonymity-figure]")).to_have_text(
        f"You are hidden among {figures['discussion']} colleagues: everyone who holds this petition's discussion "
        "credential could have written it."
    )
    confirm = discussion.get_by_label("I understand: post anonymously anyway")
    expect(discussion).to_contain_text("published together, in a batch, at the hour", use_inner_text=True)

    body = "The recordings include our *private* chats with the union rep."
    discussion.get_by_label("Your comment").fill(body)
    before = len(sent)
    # Fewer colleagues than the minimum group size (the demo has four workers): nothing goes until he says he
    # understands.
    assert figures["discussion"] < figures["min_group_size"], figures
    expect(discussion.locator("[data-anonymity-small]")).to_contain_text(
        f"That is fewer than {figures['min_group_size']}. In a group this small, someone who knows who they are may "
        "guess that you wrote this.",
        use_inner_text=True,
    )
    discussion.get_by_role("button", name="Post comment anonymously").click()
    chen.wait_for_timeout(300)
    assert not [request for request in sent[before:] if COMMENTS in request.url]
    confirm.check()
    discussion.get_by_role("button", name="Post comment anonymously").click()
    status = discussion.locator("[data-anonymous-status]")
    expect(status).to_contain_text(
        re.compile(f"It will appear as {pseudonym} within " + r"(a minute|\d+ (minutes|hours?))"), use_inner_text=True
    )
    expect(status).to_contain_text("so the moment you wrote cannot be matched with your sign-in", use_inner_text=True)

    # Sent without cookies (and no other header that names him), as the server would see it.
    (posted,) = [request for request in sent if request.url.endswith(COMMENTS)]
    headers = posted.all_headers()
    assert "cookie" not in headers and "x-csrf-token" not in headers and "referer" not in headers, headers
    assert posted.post_data_json["message"] == held["message"] and posted.post_data_json["parent_id"] is None
    # ...while his signed-in requests from the same page did carry his session: the check above can fail.
    asked = [request for request in sent if urlsplit(request.url).path == "/api/v1/wallet"]
    assert asked and "cookie" in asked[0].all_headers()

    # Until its batch, only he sees it, from his browser's storage: the server shows it to nobody.
    waiting = chen.locator("li.comment-pending")
    expect(waiting).to_contain_text("waiting for the next batch")
    expect(waiting).to_contain_text("union rep")
    open_discussion(chen, path)
    expect(chen.locator("li.comment-pending")).to_contain_text("union rep")
    assert "union rep" not in cookieless_html(server, path)
    (queued,) = [item for item in records(chen) if item.get("kind") == "comment"]
    assert queued["status"] == "queued" and queued["body"] == body

    # Fewer than k comments wait: the first hour's batch holds them, the next one publishes them.
    assert run_batch(server) == 0
    open_discussion(chen, path)
    expect(chen.locator("li.comment-pending")).to_contain_text("union rep")
    assert run_batch(server) == 1
    open_discussion(chen, path)
    expect(chen.locator("li.comment-pending")).to_have_count(0)
    mine = chen.locator("article[data-pseudonym]", has_text="union rep")
    expect(mine.locator(".comment-author")).to_have_text(pseudonym)
    expect(mine.locator("em")).to_have_text("private")
    expect(mine.get_by_role("button", name="Endorse")).to_be_hidden()  # as on a named comment of one's own
    assert pseudonym in cookieless_html(server, path)

    # He edits it from the page: the editor starts from his Markdown; the change goes without cookies too.
    mine.get_by_role("button", name="Edit").click()
    editor = mine.get_by_label("Edit your anonymous comment")
    expect(editor).to_have_value(body)
    editor.fill("The recordings include our *private* chats with the union representative.")
    mine.get_by_role("button", name="Save the change").click()
    expect(mine).to_contain_text("It is applied with the next hourly batch of anonymous comments")
    (edited,) = [request for request in sent if re.search(r"/api/v1/anonymous/comments/\d+/edit$", request.url)]
    assert "cookie" not in edited.all_headers()
    assert "union representative" not in cookieless_html(server, path)  # not at once: its moment would show
    # Edits wait for k colleagues like comments: the first hour holds this one, the next publishes it.
    run_batch(server)
    run_batch(server)
    assert "union representative" in cookieless_html(server, path)

    # Another worker sees the comment, under the pseudonym, and nothing to change it with.
    open_discussion(dara, path)
    theirs = dara.locator("article[data-pseudonym]", has_text="union representative")
    expect(theirs.locator(".comment-author")).to_have_text(pseudonym)
    expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)
    expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    expect(theirs.get_by_role("link", name="Edit or delete")).to_have_count(0)

    # He deletes it: the marker every reader sees replaces it.
    open_discussion(chen, path)
    mine = chen.locator("article[data-pseudonym]", has_text="union representative")
    comment_id = mine.get_attribute("data-comment-id")
    mine.get_by_role("button", name="Delete").click()
    chen.get_by_role("button", name="Delete my comment").click()
    expect(chen.locator(f"#comment-{comment_id}")).to_contain_text("will be deleted with the next hourly batch")
    (deleted,) = [request for request in sent if re.search(r"/api/v1/anonymous/comments/\d+/delete$", request.url)]
    assert "cookie" not in deleted.all_headers()
    run_batch(server)  # deletions go out with the next batch, whatever its size
    page = cookieless_html(server, path)
    assert "union representative" not in page and "[deleted by author]" in page


def test_a_reply_can_be_anonymous_too(person, server) -> None:
    from playwright.sync_api import expect

    path = petition_path(server)
    dara = signed_in(person, "dara")
    dara.goto(path)
    dara.locator("#discussion").get_by_label("Your comment").fill("Has anyone asked the privacy team?")
    dara.locator("#discussion").get_by_role("button", name="Post comment").click()
    # Posted in place (comments.js).
    expect(dara.locator("#comments-announce")).to_contain_text("Posted: your comment is at the top")
    dara.wait_for_url(re.compile(r"#comment-\d+$"))
    parent_id = int(dara.url.rsplit("#comment-", 1)[1])
    thread = f"/comments/{parent_id}"

    ana = signed_in(person, "ana")
    open_discussion(ana, thread)
    ana.get_by_label("Your reply").fill("Asked them today; no answer yet.")
    ana.get_by_label("Post anonymously", exact=True).check()
    ana.get_by_label("I understand: post anonymously anyway").check()  # fewer than k colleagues hold it
    ana.get_by_role("button", name="Post reply anonymously").click()
    expect(ana.locator("[data-anonymous-status]")).to_contain_text("It will appear as Colleague ", use_inner_text=True)
    # Shown to her under the comment it answers, until the batch.
    expect(ana.locator(f"#comment-{parent_id} li.comment-pending")).to_contain_text("no answer yet")
    assert run_batch(server) == 0 and run_batch(server) == 1
    open_discussion(ana, thread)
    expect(ana.locator(f"#comment-{parent_id} li.comment-pending")).to_have_count(0)
    reply = ana.locator(f"#comment-{parent_id} article[data-pseudonym]", has_text="no answer yet")
    expect(reply.get_by_role("button", name="Edit")).to_be_visible()


def test_where_the_anonymous_choice_cannot_work_the_page_says_why(person, server, chromium) -> None:
    from playwright.sync_api import expect

    path = petition_path(server)
    # Ben's browser holds his credential and offers the choice...
    ben = signed_in(person, "ben")
    open_discussion(ben, path)
    expect(ben.get_by_label("Post anonymously", exact=True)).to_be_visible()
    # ...until storage is blocked (or missing): the browser cannot keep a credential then.
    ben.add_init_script(
        'IDBFactory.prototype.open = function () { throw new DOMException("blocked", "SecurityError"); };'
    )
    other = person("ben")
    other.add_init_script('Object.defineProperty(window, "indexedDB", { configurable: true, get: () => undefined });')
    for page in (ben, other):
        page.goto(path)
        form = page.locator("#comment-form")
        expect(form).to_contain_text(
            "this site's storage (IndexedDB) is blocked or turned off here", use_inner_text=True
        )
        expect(form).to_contain_text("undersigned client comment", use_inner_text=True)
        expect(form).not_to_contain_text("holds no discussion credential", use_inner_text=True)
        expect(form.get_by_label("Post anonymously", exact=True)).to_be_hidden()

    # Another browser of his, where the wallet does not live: nothing is due, and it holds no credential.
    elsewhere = signed_in(person, "ben")
    open_discussion(elsewhere, path)
    form = elsewhere.locator("#comment-form")
    expect(form).to_contain_text("it holds no discussion credential for this petition", use_inner_text=True)
    expect(form).to_contain_text("Open the petition in the browser where you collect your wallet", use_inner_text=True)
    expect(form.get_by_label("Post anonymously", exact=True)).to_be_hidden()
    assert not [item for item in records(elsewhere) if item.get("purpose") == "discuss"]
    # The named form still works.
    form.get_by_label("Your comment").fill("Posting this one with my name, then.")
    form.get_by_role("button", name="Post comment").click()
    expect(elsewhere.locator("#comments-announce")).to_contain_text("Posted: your comment is at the top")
    expect(elsewhere.locator("li.comment", has_text="Posting this one with my name").first).to_contain_text(
        "Ben Okafor"
    )

    # Without JavaScript: the choice is explained, not hidden, and the named form works.
    from app.demo import DEMO_PASSWORD

    context = chromium.new_context(base_url=server.base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/signin")
        page.locator("main").get_by_label("Work email address").fill("dara@example.org")
        page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        page.goto(path)
        shown = page.locator("#comment-form").inner_text()  # as rendered: <noscript> included, hidden elements not
        assert "Posting anonymously needs JavaScript" in shown and "undersigned client comment" in shown, shown
        assert "Post anonymously" not in shown and "not available in this browser" not in shown, shown
        form = page.locator("#comment-form")
        form.get_by_label("Your comment").fill("Leadership reads this thread.")
        form.get_by_role("button", name="Post comment").click()
        expect(page.locator("main .flashes")).to_contain_text("Your comment is posted.")
    finally:
        context.close()


def test_a_credential_whose_reply_was_lost_is_collected_on_a_later_page(server, chromium) -> None:
    from playwright.sync_api import expect

    from app.demo import DEMO_PASSWORD

    path = petition_path(server)
    petition_id = int(path.rsplit("/", 1)[1])
    context = chromium.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)
    try:
        # The server issues, but the reply never reaches the page (closed, offline).
        def lose_reply(route) -> None:
            route.fetch()
            route.abort()

        context.route("**/api/v1/wallet/tokens", lose_reply)
        page = context.new_page()
        page.goto("/signin")
        page.locator("main").get_by_label("Work email address").fill("morgan@example.org")
        page.locator("main").get_by_label("Password").fill(DEMO_PASSWORD)
        page.locator("main").get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        expect(page.locator("html")).to_have_attribute("data-wallet-ready", "error")
        # Only the wallet's secret is kept: every request derives from it, so none needs keeping (beside the keys
        # accepted, keycheck.js's petition-keys and deployment-keys records).
        kept = records(page)
        assert [item.get("kind") for item in kept if item.get("kind") not in ("petition-keys", "deployment-keys")] == [
            "secret"
        ], kept
        context.unroute("**/api/v1/wallet/tokens")

        # Nothing is due any more; the discussion page's wallet loader finds replies this browser's wallet does
        # not hold, rebuilds their requests from the secret and collects them.
        loaded = []
        page.on("request", lambda request: loaded.append(request))
        open_discussion(page, f"/petitions/{petition_id}/comments")
        assert any(request.url.endswith("/static/wallet.js") for request in loaded)
        assert not any(request.url.endswith("/api/v1/wallet/tokens") for request in loaded)
        held = credential(page, petition_id)
        assert held["status"] == "held"
        expect(page.get_by_label("Post anonymously", exact=True)).to_be_visible()
    finally:
        context.close()
