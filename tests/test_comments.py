"""Comment threads: posting, replies and their depth, order and pages, endorsements, edits, deletion, flags,
moderation, notifications, and every refusal writing nothing."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

from app.comments import repository
from app.comments.digest import send_digests
from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.core.settings import Settings
from app.models.accounts import User
from app.models.comments import Comment
from app.models.petitions import Petition
from tests import factories
from tests.conftest import Browser, count_rows, counting_statements, make_settings, outbox, sign_in_as

NewBrowser = Callable[[], Browser]
COMMENT_TABLES = ("comments", "comment_revisions", "comment_endorsements", "comment_flags")


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    # Generous comment limits: tests post many comments per account; the limit has its own test.
    return make_settings(database_url, **{"rate_limit_comment": "1000/minute", **getattr(request, "param", {})})


@pytest.fixture
def petition(db: Session, rt: Runtime) -> Petition:
    return factories.open_petition(db, rt, allow_anonymous=True)


def as_worker(new_browser: NewBrowser, db: Session, user: User | None = None) -> tuple[Browser, User]:
    user = user or factories.worker(db)
    return sign_in_as(new_browser(), db, user), user


def rows(db: Session) -> dict[str, int]:
    return {table: count_rows(db, table) for table in COMMENT_TABLES}


def post(browser: Browser, petition: Petition, body: str, **extra: object):
    return browser.api("POST", f"/api/v1/petitions/{petition.id}/comments", {"body": body, **extra})


def moment(value: object) -> datetime:
    """A timestamp read with raw SQL: SQLite returns text, PostgreSQL a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def page_text(response) -> str:
    return html.unescape(response.text)


# -- posting and reading ----------------------------------------------------------------------------------------


def test_a_worker_comments_and_replies_through_the_api(
    new_browser: NewBrowser,
    db: Session,
    petition: Petition,
) -> None:
    alice, _ = as_worker(new_browser, db)
    bob, _ = as_worker(new_browser, db)
    created = post(alice, petition, "The recordings include *private* chats.")
    assert created.status_code == 201, created.text
    top = created.json()
    assert top["depth"] == 1 and top["body_html"] == "<p>The recordings include <em>private</em> chats.</p>\n"
    assert top["mine"] is True
    reply = post(bob, petition, "Mine too.", parent_id=top["id"]).json()
    assert reply["parent_id"] == top["id"] and reply["depth"] == 2 and reply["mine"] is True

    listing = new_browser().get(f"/api/v1/petitions/{petition.id}/comments").json()
    assert listing["comment_count"] == 2 and listing["accepting_comments"] is True
    (item,) = listing["items"]
    assert item["id"] == top["id"] and item["mine"] is False
    assert [r["id"] for r in item["replies"]] == [reply["id"]]


def test_the_page_form_posts_and_the_petition_page_shows_the_discussion(
    new_browser: NewBrowser, db: Session, petition: Petition
) -> None:
    alice, _ = as_worker(new_browser, db)
    response = alice.post(f"/petitions/{petition.id}/comments", {"body": "We never agreed to this."})
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/petitions/{petition.id}/comments?sort=newest#comment-")
    shown = page_text(new_browser().get(f"/petitions/{petition.id}"))
    assert "We never agreed to this." in shown and "(1 comment)" in shown
    assert "Sign in</a> to join the discussion" in shown


def test_replies_deeper_than_four_levels_sit_beside_their_parent_and_quote_it(
    db: Session, rt: Runtime, petition: Petition
) -> None:
    level = factories.comment(db, rt, petition, body="Level one")
    for depth in (2, 3, 4):
        level = factories.comment(db, rt, petition, body=f"Level {depth}", parent=level)
        assert level.depth == depth
    deeper = factories.comment(db, rt, petition, body="One more", parent=level)
    assert deeper.depth == 4 and deeper.parent_id == level.parent_id and deeper.quoted_id == level.id
    again = factories.comment(db, rt, petition, body="And another", parent=deeper)
    assert again.depth == 4 and again.quoted_id == deeper.id


def test_pages_of_comments_follow_each_order_without_gaps_or_repeats(
    new_browser: NewBrowser, db: Session, rt: Runtime, clock: FrozenClock, petition: Petition
) -> None:
    posted = []
    for number in range(25):
        clock.advance(timedelta(minutes=7))
        posted.append(factories.comment(db, rt, petition, body=f"Point {number}").id)
    reader = new_browser()
    for sort in ("top", "newest", "endorsed"):
        seen: list[int] = []
        cursor = None
        while True:
            query = f"?sort={sort}&limit=10" + (f"&cursor={cursor}" if cursor else "")
            body = reader.get(f"/api/v1/petitions/{petition.id}/comments{query}").json()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(posted) and len(seen) == 25, sort
    newest = reader.get(f"/api/v1/petitions/{petition.id}/comments?sort=newest&limit=3").json()
    assert [item["id"] for item in newest["items"]] == posted[::-1][:3]


def test_top_order_weighs_endorsements_against_age(
    new_browser: NewBrowser, db: Session, rt: Runtime, clock: FrozenClock, petition: Petition
) -> None:
    old = factories.comment(db, rt, petition, body="Old but strong")
    clock.advance(timedelta(hours=10))
    new = factories.comment(db, rt, petition, body="New")
    top = lambda: [i["id"] for i in new_browser().get(f"/api/v1/petitions/{petition.id}/comments").json()["items"]]
    assert top() == [new.id, old.id]
    for _ in range(3):
        endorser, _ = as_worker(new_browser, db)
        assert endorser.api("POST", f"/api/v1/comments/{old.id}/endorsement").status_code == 201
    assert top() == [old.id, new.id]


def test_more_replies_page_through_a_comment(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    parent = factories.comment(db, rt, petition, body="Parent")
    replies = [factories.comment(db, rt, petition, body=f"Reply {n}", parent=parent).id for n in range(25)]
    reader = new_browser()
    listed = reader.get(f"/api/v1/petitions/{petition.id}/comments").json()["items"][0]
    assert [r["id"] for r in listed["replies"]] == replies[:3] and listed["more_replies"] is True
    first = reader.get(f"/api/v1/comments/{parent.id}/replies").json()
    second = reader.get(f"/api/v1/comments/{parent.id}/replies?cursor={first['next_cursor']}").json()
    assert [r["id"] for r in first["items"] + second["items"]] == replies and second["next_cursor"] is None
    page = page_text(reader.get(f"/comments/{parent.id}"))
    assert "Reply 19" in page and "Reply 20" not in page and "More replies" in page


# -- refusals write nothing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("empty", 422, "This is required."),
        ("huge", 422, "Use at most 5000 characters."),
        ("other_petition", 422, "not in this petition's discussion"),
        ("unknown_parent", 422, "not in this petition's discussion"),
        ("closed", 409, "closed, so its discussion is read-only"),
        ("locked", 409, "Moderators locked this discussion: Cooling off"),
        ("removed_parent", 409, "removed, so it takes no replies"),
        ("anonymous_not_allowed", 422, "sent by your wallet"),
    ],
)
def test_bad_comments_are_refused_clearly_and_write_nothing(
    case: str, status: int, message: str, new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    browser, _ = as_worker(new_browser, db)
    target = petition
    payload: dict[str, object] = {"body": "A fair point."}
    if case == "empty":
        payload["body"] = "   "
    elif case == "huge":
        payload["body"] = "x" * 100_000
    elif case == "other_petition":
        other = factories.open_petition(db, rt, title="Another petition")
        payload["parent_id"] = factories.comment(db, rt, other).id
    elif case == "unknown_parent":
        payload["parent_id"] = 999_999
    elif case == "closed":
        target = factories.closed_petition(db, rt)
    elif case == "locked":
        factories.comment(db, rt, petition)
        moderator = sign_in_as(new_browser(), db, factories.moderator(db))
        assert (
            moderator.api(
                "PUT", f"/api/v1/moderation/petitions/{petition.id}/comments-lock", {"reason": "Cooling off"}
            ).status_code
            == 204
        )
    elif case == "removed_parent":
        author, _user = as_worker(new_browser, db)
        parent = post(author, petition, "Soon gone").json()
        assert author.api("DELETE", f"/api/v1/comments/{parent['id']}").status_code == 204
        payload["parent_id"] = parent["id"]
    elif case == "anonymous_not_allowed":
        target = factories.open_petition(db, rt, title="Named only", allow_anonymous=False)
        payload["anonymous"] = True
    before = rows(db)
    response = browser.api("POST", f"/api/v1/petitions/{target.id}/comments", payload)
    assert response.status_code == status, response.text
    assert message in response.text
    assert rows(db) == before

    page = browser.post(f"/petitions/{target.id}/comments", {k: str(v) for k, v in payload.items()})
    assert page.status_code in (status, 303)
    if page.status_code == 303:  # small forms go back with the reason as a message
        assert message in page_text(browser.get(page.headers["location"]))
    else:
        assert message in page_text(page)
    assert rows(db) == before


def test_endorsing_twice_or_ones_own_comment_is_refused(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    author, _user = as_worker(new_browser, db)
    comment_id = post(author, petition, "Mine").json()["id"]
    assert author.api("POST", f"/api/v1/comments/{comment_id}/endorsement").status_code == 409
    reader, _ = as_worker(new_browser, db)
    assert reader.api("POST", f"/api/v1/comments/{comment_id}/endorsement").json()["endorsement_count"] == 1
    before = rows(db)
    again = reader.api("POST", f"/api/v1/comments/{comment_id}/endorsement")
    assert again.status_code == 409 and "You already endorse this comment." in again.text
    assert rows(db) == before
    withdrawn = reader.api("DELETE", f"/api/v1/comments/{comment_id}/endorsement")
    assert withdrawn.json()["endorsement_count"] == 0 and withdrawn.json()["endorsed_by_me"] is False
    assert reader.api("DELETE", f"/api/v1/comments/{comment_id}/endorsement").status_code == 409


def test_the_endorse_button_toggles(new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition) -> None:
    comment = factories.comment(db, rt, petition)
    reader, _ = as_worker(new_browser, db)
    assert reader.post(f"/comments/{comment.id}/endorse", {"endorse": "1"}).status_code == 303
    assert 'aria-pressed="true"' in reader.get(f"/comments/{comment.id}").text
    twice = reader.post(f"/comments/{comment.id}/endorse", {"endorse": "1"})
    assert "You already endorse this comment." in page_text(reader.get(twice.headers["location"]))
    reader.post(f"/comments/{comment.id}/endorse", {"endorse": "0"})
    assert 'aria-pressed="false"' in reader.get(f"/comments/{comment.id}").text
    db.expire_all()
    assert db.get(Comment, comment.id).endorsement_count == 0  # type: ignore[union-attr]


def test_bad_cursors_and_ids_are_clear_errors(new_browser: NewBrowser, petition: Petition) -> None:
    reader = new_browser()
    for query in ("?cursor=nonsense", "?sort=top&cursor=1~x", "?sort=sideways", "?limit=1000"):
        response = reader.get(f"/api/v1/petitions/{petition.id}/comments{query}")
        assert response.status_code == 422, query
    assert reader.get("/api/v1/comments/99999999999").status_code == 422
    assert reader.get("/api/v1/comments/424242").status_code == 404
    assert reader.get(f"/petitions/{petition.id}/comments?cursor=nonsense").status_code == 422


# -- editing and deleting -------------------------------------------------------------------------------------------


def test_edits_in_the_window_mark_the_comment_and_later_ones_keep_history(
    new_browser: NewBrowser, db: Session, clock: FrozenClock, petition: Petition
) -> None:
    author, _ = as_worker(new_browser, db)
    comment_id = post(author, petition, "First wording").json()["id"]
    clock.advance(timedelta(minutes=5))
    quick = author.api("PATCH", f"/api/v1/comments/{comment_id}", {"body": "Second wording"}).json()
    assert quick["edited_at"] is not None and quick["has_history"] is False
    assert author.get(f"/api/v1/comments/{comment_id}/history").json() == []
    clock.advance(timedelta(minutes=30))
    late = author.api("PATCH", f"/api/v1/comments/{comment_id}", {"body": "Third wording"}).json()
    assert late["has_history"] is True and "Third wording" in late["body_html"]
    history = new_browser().get(f"/api/v1/comments/{comment_id}/history").json()
    assert [h["body_html"] for h in history] == ["<p>Second wording</p>\n"]
    page = page_text(new_browser().get(f"/comments/{comment_id}/history"))
    assert "Second wording" in page and "First wording" not in page


def test_only_the_author_edits_or_deletes(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    comment = factories.comment(db, rt, petition, body="Not yours")
    other, _ = as_worker(new_browser, db)
    before = rows(db)
    assert other.api("PATCH", f"/api/v1/comments/{comment.id}", {"body": "Hijacked"}).status_code == 403
    assert other.api("DELETE", f"/api/v1/comments/{comment.id}").status_code == 403
    assert other.get(f"/comments/{comment.id}/edit").status_code == 403
    assert rows(db) == before
    assert "Not yours" in new_browser().get(f"/comments/{comment.id}").text


def test_deleting_keeps_the_thread_shape(
    new_browser: NewBrowser, db: Session, rt: Runtime, clock: FrozenClock, petition: Petition
) -> None:
    author, _user = as_worker(new_browser, db)
    comment_id = post(author, petition, "Regrettable words").json()["id"]
    clock.advance(timedelta(hours=1))
    author.api("PATCH", f"/api/v1/comments/{comment_id}", {"body": "Still regrettable"})
    parent = db.get(Comment, comment_id)
    factories.comment(db, rt, petition, body="A reply that stays", parent=parent)
    response = author.post(f"/comments/{comment_id}/delete")
    assert response.status_code == 303
    page = page_text(new_browser().get(f"/petitions/{petition.id}/comments"))
    assert "[deleted by author]" in page and "A reply that stays" in page and "regrettable" not in page.lower()
    assert count_rows(db, "comment_revisions") == 0
    stored = db.execute(text("SELECT body, body_html, state FROM comments WHERE id = :id"), {"id": comment_id}).one()
    assert tuple(stored) == ("", "", "deleted")
    assert author.api("DELETE", f"/api/v1/comments/{comment_id}").status_code == 409


def test_a_closed_discussion_is_read_only_but_authors_can_still_delete(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    author, _user = as_worker(new_browser, db)
    comment_id = post(author, petition, "Before closing").json()["id"]
    reader, _ = as_worker(new_browser, db)
    from app.petitions import service as petitions

    petitions.close(db=db, rt=rt, petition=db.get_one(Petition, petition.id), actor=None, reason="deadline")
    db.commit()
    assert author.api("PATCH", f"/api/v1/comments/{comment_id}", {"body": "After"}).status_code == 409
    assert reader.api("POST", f"/api/v1/comments/{comment_id}/endorsement").status_code == 409
    page = page_text(reader.get(f"/petitions/{petition.id}"))
    assert "This petition is closed, so its discussion is read-only." in page and "Post comment" not in page
    assert author.api("DELETE", f"/api/v1/comments/{comment_id}").status_code == 204


# -- flags and moderation ------------------------------------------------------------------------------------------


def test_flags_collapse_a_comment_and_moderators_hide_it_with_a_public_reason(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    comment = factories.comment(db, rt, petition, body="Name and shame: J. Doe lives at 12 Elm St.")
    flaggers = [as_worker(new_browser, db)[0] for _ in range(3)]
    first = flaggers[0].api(
        "POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "personal_information", "note": "An address"}
    )
    assert first.status_code == 201
    again = flaggers[0].api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "spam"})
    assert again.status_code == 409
    assert flaggers[1].api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "other"}).status_code == 422
    assert flaggers[1].api("POST", f"/api/v1/comments/{comment.id}/flags", {"reason": "bogus"}).status_code == 422
    for browser in flaggers[1:]:
        assert browser.post(f"/comments/{comment.id}/flag", {"reason": "harassment"}).status_code == 303
    listed = new_browser().get(f"/api/v1/petitions/{petition.id}/comments").json()["items"][0]
    assert listed["collapsed"] is True
    assert "Collapsed: several colleagues flagged" in page_text(new_browser().get(f"/petitions/{petition.id}"))

    moderator = sign_in_as(new_browser(), db, factories.moderator(db))
    queue = page_text(moderator.get("/moderation/comments"))
    assert "Shares someone's personal information: “An address”" in queue and "12 Elm St." in queue
    assert "Flagged comments (1)" in page_text(moderator.get("/moderation"))
    hidden = moderator.post(f"/moderation/comments/{comment.id}/hide", {"reason": "Personal details", "from": "queue"})
    assert hidden.headers["location"] == "/moderation/comments"
    page = page_text(new_browser().get(f"/petitions/{petition.id}"))
    assert "[hidden by moderators: Personal details]" in page and "Elm St." not in page
    api = new_browser().get(f"/api/v1/comments/{comment.id}").json()
    assert api["state"] == "hidden" and api["body_html"] is None and api["hidden_reason"] == "Personal details"
    assert "No flagged comments" in moderator.get("/moderation/comments").text
    actions = [row.action for row in db.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    assert "comment.hidden" in actions

    restored = moderator.api("POST", f"/api/v1/moderation/comments/{comment.id}/restore")
    assert restored.json()["state"] == "visible" and restored.json()["collapsed"] is False


def test_moderators_lock_and_unlock_a_discussion(new_browser: NewBrowser, db: Session, petition: Petition) -> None:
    moderator = sign_in_as(new_browser(), db, factories.moderator(db))
    assert (
        moderator.post(f"/moderation/petitions/{petition.id}/comments/lock", {"reason": "Too heated"}).status_code
        == 303
    )
    worker, _ = as_worker(new_browser, db)
    page = page_text(worker.get(f"/petitions/{petition.id}"))
    assert "Moderators locked this discussion: Too heated" in page and "Post comment" not in page
    assert (
        moderator.post(f"/moderation/petitions/{petition.id}/comments/lock", {"reason": "Again"}).status_code == 303
    )  # refused with a message, nothing changes
    assert moderator.api("DELETE", f"/api/v1/moderation/petitions/{petition.id}/comments-lock").status_code == 204
    assert post(worker, petition, "Calmer now").status_code == 201


def test_workers_cannot_moderate(new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition) -> None:
    comment = factories.comment(db, rt, petition)
    worker, _ = as_worker(new_browser, db)
    assert worker.api("POST", f"/api/v1/moderation/comments/{comment.id}/hide", {"reason": "x"}).status_code == 403
    assert worker.get("/moderation/comments").status_code == 403


# -- notifications ---------------------------------------------------------------------------------------------------


def test_authors_hear_of_replies_unless_they_opt_out(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    author, user = as_worker(new_browser, db)
    comment_id = post(author, petition, "Who else?").json()["id"]
    replier, replier_user = as_worker(new_browser, db)
    post(replier, petition, "Me!", parent_id=comment_id)
    (message,) = outbox(db, to=user.email)
    assert f"{replier_user.display_name} replied to your comment" in message.subject
    assert "Me!" in message.body_text and "/comments/" in message.body_text
    post(author, petition, "Talking to myself", parent_id=comment_id)
    assert len(outbox(db, to=user.email)) == 1  # not for one's own replies
    assert author.post("/account/notifications", {}).status_code == 303  # the box unticked
    assert 'id="comment_replies" name="comment_replies" type="checkbox" value="1" aria' in author.get("/account").text
    post(replier, petition, "Still me", parent_id=comment_id)
    assert len(outbox(db, to=user.email)) == 1
    assert author.api("PUT", "/api/v1/me/notifications", {"comment_replies": True}).json() == {"comment_replies": True}


def test_organizers_get_a_daily_digest_of_new_top_level_comments(
    db: Session, rt: Runtime, connection: Connection, clock: FrozenClock, petition: Petition
) -> None:

    organizer = db.get(User, petition.creator_id)
    first = factories.comment(db, rt, petition, body="First thought")
    reply = factories.comment(db, rt, petition, body="A reply is not a new thread", parent=first)
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert send_digests(sessions=sessions, rt=rt) == 1
    digests = lambda: [m for m in outbox(db, to=organizer.email) if m.template == "comment_digest"]  # type: ignore[union-attr]
    (digest,) = digests()
    assert "1 new comment" in digest.subject and "First thought" in digest.body_text
    assert reply.body not in digest.body_text
    factories.comment(db, rt, petition, body="Second thought")
    assert send_digests(sessions=sessions, rt=rt) == 0  # at most daily
    clock.advance(timedelta(days=1, minutes=1))
    assert send_digests(sessions=sessions, rt=rt) == 1
    latest = digests()[-1]
    assert "Second thought" in latest.body_text and "First thought" not in latest.body_text
    clock.advance(timedelta(days=2))
    assert send_digests(sessions=sessions, rt=rt) == 0  # nothing new


# -- live updates, limits --------------------------------------------------------------------------------------------


def test_the_live_endpoint_returns_only_what_is_new(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    first = factories.comment(db, rt, petition, body="Already seen")
    reader = new_browser()
    place = repository.time_cursor(first)
    assert f'data-after="{place}"' in reader.get(f"/petitions/{petition.id}").text
    nothing = reader.get(f"/petitions/{petition.id}/comments/new?after={place}")
    assert nothing.status_code == 200 and nothing.headers["X-New-Comments"] == "0" and "<li" not in nothing.text
    assert nothing.headers["X-Latest-Comment"] == place
    factories.comment(db, rt, petition, body="Fresh")
    reply = factories.comment(db, rt, petition, body="Fresh reply", parent=first)
    fresh = reader.get(f"/petitions/{petition.id}/comments/new?after={place}")
    assert fresh.headers["X-New-Comments"] == "2" and "Fresh" in fresh.text and "Already seen" not in fresh.text
    assert fresh.headers["X-Latest-Comment"] == repository.time_cursor(reply)
    assert reader.get(f"/petitions/{petition.id}/comments/new?after=12~x").status_code == 422
    assert f'data-live-url="/petitions/{petition.id}/comments/new"' in reader.get(f"/petitions/{petition.id}").text


@pytest.mark.parametrize("settings", [{"rate_limit_comment": "2/minute"}], indirect=True)
def test_commenting_is_rate_limited_per_account(new_browser: NewBrowser, db: Session, petition: Petition) -> None:
    browser, _ = as_worker(new_browser, db)
    assert post(browser, petition, "One").status_code == 201
    assert post(browser, petition, "Two").status_code == 201
    before = rows(db)
    third = post(browser, petition, "Three")
    assert third.status_code == 429 and "Retry-After" in third.headers
    assert rows(db) == before
    other, _ = as_worker(new_browser, db)
    assert post(other, petition, "Someone else").status_code == 201


# -- queries -------------------------------------------------------------------------------------------------------


def test_a_page_of_comments_with_replies_runs_a_fixed_number_of_queries(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition, connection: Connection
) -> None:
    def add_threads(count: int) -> None:
        for _ in range(count):
            level = factories.comment(db, rt, petition, body="Top")
            for _depth in (2, 3, 4):
                level = factories.comment(db, rt, petition, body="Reply", parent=level)
            factories.anonymous_comment(db, rt, petition, body="Anonymous", parent=level)

    reader, _ = as_worker(new_browser, db)
    counts = []
    for threads in (2, 10):
        add_threads(threads)
        for path in (f"/api/v1/petitions/{petition.id}/comments", f"/petitions/{petition.id}/comments"):
            reader.get(path)  # warm
            with counting_statements(connection) as statements:
                response = reader.get(path)
            assert response.status_code == 200
            counts.append((path, len(statements)))
    assert counts[0] == counts[2] and counts[1] == counts[3], counts


# -- found in review ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", "x" * 6000])
def test_a_refused_reply_from_the_page_is_a_clear_error(
    body: str, new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    deep = factories.comment(db, rt, petition, body="Level one")
    for _ in range(3):
        deep = factories.comment(db, rt, petition, body="Deeper", parent=deep)
    deeper = factories.comment(db, rt, petition, body="Beside and quoting", parent=deep)  # has a quote
    browser, _ = as_worker(new_browser, db)
    before = rows(db)
    for parent in (deep, deeper):
        response = browser.post(f"/petitions/{petition.id}/comments", {"body": body, "parent_id": str(parent.id)})
        assert response.status_code == 422, response.text[-300:]
        assert "characters" in page_text(response) or "This is required." in page_text(response)
    assert rows(db) == before


@pytest.mark.parametrize(
    "path",
    [
        "/petitions/{p}/comments?cursor=\u00b2",
        "/petitions/{p}/comments?sort=newest&cursor=" + "9" * 30,
        "/petitions/{p}/comments?sort=endorsed&cursor=1~" + "9" * 30,
        "/petitions/{p}/comments?cursor=inf~1",
        "/comments/{c}?cursor=\u00b2",
        "/api/v1/comments/{c}/replies?cursor=\u00b2",
        "/api/v1/petitions/{p}/comments?cursor=nan~1",
        "/api/v1/comments/{c}/replies?cursor=" + "9" * 30,
    ],
)
def test_odd_cursors_are_clear_errors(
    path: str, new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    comment = factories.comment(db, rt, petition)
    response = new_browser().get(path.format(p=petition.id, c=comment.id))
    assert response.status_code == 422, response.text[-300:]


def test_an_odd_parent_id_on_the_page_is_a_clear_error(
    new_browser: NewBrowser, db: Session, petition: Petition
) -> None:
    browser, _ = as_worker(new_browser, db)
    for value in ("\u00b2", "9" * 30, "-1"):
        response = browser.post(f"/petitions/{petition.id}/comments", {"body": "Hello", "parent_id": value})
        assert response.status_code == 422, value


def test_anonymous_replies_mail_nobody(new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition) -> None:
    """Not even the parent's author when the reply is theirs: a missing email would say who wrote it."""
    author, user = as_worker(new_browser, db)
    comment_id = post(author, petition, "Mine").json()["id"]
    parent = db.get_one(Comment, comment_id)
    factories.anonymous_comment(db, rt, petition, body="Someone else, anonymously", parent=parent)
    assert [m for m in outbox(db, to=user.email) if m.template == "comment_reply"] == []
    stranger, _ = as_worker(new_browser, db)
    post(stranger, petition, "Someone else, by name", parent_id=comment_id)
    assert len([m for m in outbox(db, to=user.email) if m.template == "comment_reply"]) == 1


def test_an_author_can_delete_a_hidden_comment(new_browser: NewBrowser, db: Session, petition: Petition) -> None:
    author, _ = as_worker(new_browser, db)
    comment_id = post(author, petition, "Too much").json()["id"]
    moderator = sign_in_as(new_browser(), db, factories.moderator(db))
    moderator.api("POST", f"/api/v1/moderation/comments/{comment_id}/hide", {"reason": "Off topic"})
    assert author.api("DELETE", f"/api/v1/comments/{comment_id}").status_code == 204
    stored = db.execute(
        text("SELECT body, state, hidden_reason FROM comments WHERE id = :id"), {"id": comment_id}
    ).one()
    assert tuple(stored) == ("", "deleted", None)


def test_the_petition_page_has_no_duplicate_ids_for_organizers(
    new_browser: NewBrowser, db: Session, rt: Runtime, petition: Petition
) -> None:
    import re as regex

    organizer = sign_in_as(new_browser(), db, db.get_one(User, petition.creator_id))
    page = organizer.get(f"/petitions/{petition.id}").text
    ids = regex.findall(r'\sid="([^"]+)"', page)
    assert "comment-body" in ids and len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
