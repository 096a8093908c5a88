"""The petition page for signed-in workers: what is the same for every reader rendered once per page version.

On an employee platform almost every reader is signed in, so their page is the one that matters (issue #24), and
most of its cost was the same for all of them: the text, the tally, the timeline, the response, the check section
and a page of the discussion, rendered with a dozen queries for each reader. Here that part is rendered once per
petition version (app/core/versions.py: the services bump it on every change that shows on the page) and kept in
this process; each request then renders only the reader's own parts and fills them into the copy:

- the sign panel and the follow form (templates/petitions/_sign_panel.html, _follow.html), where the copy holds a
  placeholder comment;
- the reader's CSRF token, where the copy holds a placeholder string no reader is ever given;
- the controls of the comments the reader wrote or endorses (their `comment_actions`, between markers).

Which readers share a copy: signed-out readers, and verified workers with no role who do not organize this
petition ("members"); one copy for each kind. A member's page is answered from the copy before the route runs
(app/routes/petition_reader.py: one statement, one thread hop), which also makes the copy when there is none. For
those pages the copy also keeps the frame around its content (base.html and show.html, `_framed`) and the parts
that show nothing of the reader but what they are kept by (the follow form, the sign panel of a member who has not
signed: `_part_key`), so that such a page renders only a signer's own panel. Everyone else (organizers, responders,
moderators, admins, the unverified) sees controls all through the page and gets it rendered whole, as before: a
handful of people.

Freshness: a change shows to every reader at its commit (the version moves, the next request renders a new copy),
except to members when the petition's own row changed only by its counts (a comment, a hidden comment or name, an
update): they get the copy there is while it is younger than `shared_page_seconds - CLAIM_SECONDS`, and the copy
before while a request makes the next one, never one older than `shared_page_seconds` (`PageCopies.previous`);
whether the reader may read the petition at all is checked on every request before the copy is used, so a hidden
petition disappears at once. A copy also changes key when the petition's own row does (its count, state, text), and
is not used after `MAX_AGE` seconds whatever the counter says (a counter Redis lost, or one process of several
without Redis: see app/core/versions.py). A signature alone (the count, the public names) moves the page version but
not its content version: a copy then serves on for `shared_page_seconds` after it was made, the freshness signed-out
readers already get, so that a petition signed a hundred times a second is not rendered again for each signature
(issue #24's viral petition). The reader's own parts are filled in from the petition as read now.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from sqlalchemy import inspect
from sqlalchemy.orm import InstanceState

from app.core.runtime import Runtime
from app.core.templating import base_context, csrf_token, render
from app.core.versions import PageVersions
from app.models.accounts import Role, User
from app.models.petitions import Petition

# Where each reader's CSRF token goes in a copy: random per process, never a token any reader holds.
CSRF_PLACEHOLDER = f"csrf-placeholder-{secrets.token_hex(16)}"
# Where a member's account and name, and the page's content, go in a copy's frame (`_framed`): random per process.
READER_ID, READER_NAME = f"reader-id-{secrets.token_hex(16)}", f"reader-name-{secrets.token_hex(16)}"
FRAME_CONTENT = f"<!--frame-content-{secrets.token_hex(16)}-->"
READER_PARTS = {"sign_panel": "petitions/_sign_panel.html", "follow": "petitions/_follow.html"}
CONTENT_START, CONTENT_END = "<!--page-content-->", "<!--/page-content-->"
MAX_AGE = 60.0  # seconds
MAX_COPIES = 256  # a copy per petition and kind of reader: the busy petitions of a deployment
# Copies being made: one request makes each, the others that need it wait for it (`PageCopies.making`). Locks by
# the key's hash, so that their number is bounded; two keys sharing one only wait for each other now and then.
MAKING_LOCKS = 64
MAKING_WAIT = 10.0  # seconds a request waits for another's copy before it makes its own
PUBLIC, MEMBER = "public", "member"
# The petition's columns a signature moves (app/signatures/service.py, sign: `page_changed(count_only=True)`).
COUNT_COLUMNS = frozenset({"signature_count"})
# And those a comment moves: a members' copy that differs from the petition only by these may answer while the
# current one is being made (`PageCopies.previous`).
DISCUSSION_COLUMNS = COUNT_COLUMNS | {"comment_count"}
CLAIM_SECONDS = 2.0  # how long the request that claimed the making of a copy has to keep it before another may


class _Member:
    """Who a members' copy is rendered for: verified, no role, organizes nothing, signed nothing, endorses nothing."""

    id = None
    display_name = ""
    is_verified = True

    def has_role(self, role: object) -> bool:
        return False


MEMBER_STAND_IN = _Member()


@dataclass(frozen=True)
class PageReader:
    """The signed-in member a page is filled in for, as its templates read them (`current_user`): verified, no role
    but a worker's. Nothing else of the account is read for the page (app/routes/petition_reader.py)."""

    id: int
    display_name: str
    is_verified: bool = True

    def has_role(self, role: Role | str) -> bool:
        return Role(role) is Role.worker


@dataclass(frozen=True)
class _FrameReader:
    """The member a copy's frame is rendered for: placeholders where their account and name go."""

    id: str = READER_ID
    display_name: str = READER_NAME
    is_verified: bool = True

    def has_role(self, role: Role | str) -> bool:
        return Role(role) is Role.worker


FRAME_READER = _FrameReader()


# The reader's own context (app/routes/petitions_pages.py, _reader_context) for no reader in particular.
NO_READER: dict[str, Any] = {
    "is_organizer": False,
    "following": False,
    "own_signature": None,
    "own_receipt": None,
    "organizers": [],
    "token_burned": False,
    "token_unspent": False,
    "departments": [],
    "locations": [],
}


@dataclass
class _Copy:
    version: int
    row: tuple[Any, ...]
    content: str
    context: dict[str, Any]
    made: float
    content_version: int | None = None  # read before the copy's queries; None: the copy serves its version only
    # The page around the content for members answered before the route (`_framed`), by whether the reader signed.
    frames: dict[bool, str] = field(default_factory=dict)
    parts: dict[tuple[Any, ...], str] = field(default_factory=dict)  # the members' parts (`_part_key`)


class PageCopies:
    """Per process: the last copy of each petition for each kind of reader (and branding)."""

    def __init__(self, versions: PageVersions | None = None, count_seconds: float = 0.0) -> None:
        self._copies: OrderedDict[tuple[Any, ...], _Copy] = OrderedDict()
        self._lock = threading.Lock()
        self.clock = time.monotonic
        self.rendered = 0  # copies made, for tests and the bench
        self.versions = versions
        self.count_seconds = count_seconds  # how long a copy serves on after signatures alone (0: not at all)
        self._making = [threading.Lock() for _ in range(MAKING_LOCKS)]
        # Per key: when a request claimed the making of its next copy, and the copy it replaces (`previous`).
        self._claims: dict[tuple[Any, ...], tuple[float, _Copy]] = {}

    def get(self, key: tuple[Any, ...], version: int, row: tuple[Any, ...]) -> _Copy | None:
        """The copy for `key` if it shows this version of the petition, or one that differs from it only by the
        signatures made since, for `count_seconds` after the copy was made."""
        with self._lock:
            copy = self._copies.get(key)
        if copy is None:
            return None
        age = self.clock() - copy.made
        if age > MAX_AGE:
            return None
        # Members' copies only: signed-out readers' pages are shared whole for as long already (app/core/pagecache.py),
        # and the two would add up.
        if (copy.version != version or copy.row != row) and not (
            key[1] == MEMBER and self._only_signed_since(copy, key[0], row, age)
        ):
            return None
        with self._lock:
            if key in self._copies:
                self._copies.move_to_end(key)
        return copy

    def content_version(self, petition_id: int) -> int | None:
        """The petition's content version, when copies may serve on after signatures; read before a copy's
        queries, so that a copy never predates it."""
        if self.versions is None or not self.count_seconds:
            return None
        return self.versions.get_content(petition_id)

    def _only_signed_since(self, copy: _Copy, petition_id: int, row: tuple[Any, ...], age: float) -> bool:
        if copy.content_version is None or self.versions is None or age > self.count_seconds:
            return False
        if _without(copy.row, _COUNT_POSITIONS) != _without(row, _COUNT_POSITIONS):
            return False  # the petition's own row changed otherwise (its state, text, thresholds)
        return self.versions.get_content(petition_id) == copy.content_version

    def previous(self, key: tuple[Any, ...], row: tuple[Any, ...]) -> _Copy | None:
        """For a member's page that found no current copy (`get`): the members' copy there is, while another request
        makes the current one, when the petition's own row `row` differs from the copy's only by its counts of
        signatures and comments and the copy is no older than `count_seconds`. What changes the page without
        touching that row (a comment hidden, a signer's name hidden, an update) therefore reaches these pages once
        the new copy is kept, within `count_seconds` at most, as it reaches signed-out readers' shared pages
        (app/core/pagecache.py). None to the first request after a change, which claims the making (its page
        makes and keeps the copy) and to any request once that claim is CLAIM_SECONDS old.

        After each comment on a busy petition, every member's page went the long way until the new copy was kept,
        only to wait there for the request making it: a quarter to a third of all page views in issue #24's viral
        petition. A comment now shows to the first reader after it, and to the others once their page is made
        from the copy it makes: at most `count_seconds` later, the freshness of signed-out readers' pages. Anything
        else in the petition's row (its state, its text, its thresholds) still shows at once.

        A copy younger than `count_seconds - CLAIM_SECONDS` is given without a claim: the members' copy is made
        again at most that often however often the discussion moves (3 s in production), and the claim made after
        it still ends before the copy it replaces is `count_seconds` old. With a comment a second, making the
        members' copy anew after each one (about 75 ms of the interpreter, in each process) was what the slowest
        pages had waited behind: 95 % of the pages over 250 ms came within half a second of a comment (issue #24)."""
        if not self.count_seconds or key[1] != MEMBER:
            return None
        now = self.clock()
        with self._lock:
            copy = self._copies.get(key)
            if (
                copy is None
                or now - copy.made > self.count_seconds
                or _without(copy.row, _DISCUSSION_POSITIONS) != _without(row, _DISCUSSION_POSITIONS)
            ):
                return None
            if now - copy.made < self.count_seconds - CLAIM_SECONDS:
                return copy
            claim = self._claims.get(key)
            if claim is None or claim[1] is not copy or now - claim[0] > CLAIM_SECONDS:
                self._claims[key] = (now, copy)
                return None
        return copy

    @contextmanager
    def making(self, key: tuple[Any, ...]) -> Iterator[None]:
        """Held while a copy of `key` is made: the requests that find it missing or out of date at the same moment
        wait for the first one's copy instead of each making their own. With a comment a second on a busy
        petition, every worker thread of a process rendered the members' copy at once, about 90 ms of the
        interpreter each, and every other request of the process waited behind them (issue #24). A request that
        waited longer than MAKING_WAIT makes its own."""
        lock = self._making[hash(key) % MAKING_LOCKS]
        held = lock.acquire(timeout=MAKING_WAIT)
        try:
            yield
        finally:
            if held:
                lock.release()

    def keep(self, key: tuple[Any, ...], copy: _Copy) -> None:
        with self._lock:
            self._copies[key] = copy
            self._copies.move_to_end(key)
            self._claims.pop(key, None)
            while len(self._copies) > MAX_COPIES:
                evicted, _copy = self._copies.popitem(last=False)
                self._claims.pop(evicted, None)  # a claim holds the copy it replaces
            self.rendered += 1

    def clear(self) -> None:
        with self._lock:
            self._copies.clear()
            self._claims.clear()


def copies_of(app: Any) -> PageCopies:
    """The app's copies (one app per process in production; tests build several)."""
    copies = getattr(app.state, "petition_page_copies", None)
    if copies is None:
        copies = app.state.petition_page_copies = PageCopies(
            app.state.runtime.page_versions, app.state.settings.shared_page_ttl
        )
    return copies


def reader_kind(user: User | None, *, organizer: bool) -> str | None:
    """PUBLIC, MEMBER, or None for a reader whose page is rendered whole."""
    if user is None:
        return PUBLIC
    if user.is_verified and not user.roles and not organizer:
        return MEMBER
    return None


def row_of(petition: Petition) -> tuple[Any, ...]:
    """The petition's own columns as loaded now: a copy made from another row is not used."""
    state = inspect(petition)
    return tuple(state.attrs[column.key].loaded_value for column in state.mapper.column_attrs)


def _positions(columns: frozenset[str]) -> frozenset[int]:
    return frozenset(
        position for position, column in enumerate(inspect(Petition).column_attrs) if column.key in columns
    )


_COUNT_POSITIONS, _DISCUSSION_POSITIONS = _positions(COUNT_COLUMNS), _positions(DISCUSSION_COLUMNS)


def _without(row: tuple[Any, ...], positions: frozenset[int]) -> tuple[Any, ...]:
    return tuple(value for position, value in enumerate(row) if position not in positions)


def page(
    *,
    request: Request,
    rt: Runtime,
    copies: PageCopies,
    petition: Petition,
    kind: str,
    version: int | None,
    shared: Callable[[], dict[str, Any]],
    reader: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> HTMLResponse | None:
    """The page from this kind of reader's copy (made now if there is none for this version), with the reader's
    own parts filled in. `shared` builds what every reader sees, `reader` the reader's own context from it. None
    when the template put no placeholder where a reader's part goes: then the caller renders the page whole."""
    if not _has_placeholders(request):
        return None
    branding = getattr(request.state, "branding", None)
    key = (petition.id, kind, repr(branding))
    row = row_of(petition)

    def made() -> HTMLResponse | None:
        """The page from a copy made now, kept when it has a version to be kept under."""
        content_version = copies.content_version(petition.id)  # before the copy's queries, as `version` is
        context = shared()
        context["petition"] = petition
        content = _shared_content(request, context, kind)
        if any(f"<!--reader:{name}-->" not in content for name in READER_PARTS):
            return None  # a reader's part rendered into the copy (a template changed): the page is rendered whole
        copy = _Copy(
            version=version if version is not None else -1,
            row=row,
            content=content,
            context=context,
            made=copies.clock(),
            content_version=content_version,
        )
        response = answer(request, rt, copy, petition, reader)
        if version is not None:
            # Kept only once the whole page rendered, and out of this request's session: a request that fails
            # afterwards (a rollback expires what its session loaded) leaves no copy, or one that does not depend on
            # it.
            _detach(copy.context)
            copies.keep(key, copy)
        return response

    if version is None:  # no version to keep a copy under: the page made for this reader alone
        return made()
    copy = copies.get(key, version, row)
    if copy is None:
        with copies.making(key):
            copy = copies.get(key, version, row)  # made meanwhile by the request this one waited for
            if copy is None:
                return made()
    return answer(request, rt, copy, petition, reader)


def answer(
    request: Request,
    rt: Runtime,
    copy: _Copy,
    petition: Any,
    reader: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> HTMLResponse:
    """The page from `copy` with the reader's own parts (`reader` builds their context from the copy's) filled in."""
    context = {**copy.context, "petition": petition}
    context.update(reader(context))
    viewer = getattr(request.state, "viewer", None)
    member = viewer if isinstance(viewer, PageReader) else None  # answered before the route: no flash, no role
    token = csrf_token(request)
    # A page that goes the route keeps none of its parts: its reader may differ from the members in what they show.
    parts = copy.parts if member is not None else {}
    content = _fill(request, copy.content, context, parts).replace(CSRF_PLACEHOLDER, token)
    if member is not None:
        return _framed(request, copy, context, content, member, token)
    return render(request, "petitions/show.html", {**context, "page_content": Markup(content)})


def _framed(
    request: Request, copy: _Copy, context: dict[str, Any], content: str, viewer: PageReader, token: str
) -> HTMLResponse:
    """The page of a member answered before the route (app/routes/petition_reader.py: no flash message, no role):
    the copy's frame (base.html and show.html around the content, the same for every member but for their account,
    name and token) rendered once per copy, the content put into it. Rendering the frame for each reader was about
    a fifth of such a page's CPU (issue #24). What the frame shows of the reader is only their account's id, their
    name and, for the wallet script it loads, whether they signed; tests/test_page_cache_reader.py compares the
    page with the route's byte for byte."""
    signed = bool(context.get("own_signature"))
    frame = copy.frames.get(signed)
    if frame is None:
        env = request.app.state.templates.env
        frame = env.get_template("petitions/show.html").render(
            {
                **env.globals,
                "request": request,
                **base_context(request),
                **context,
                "current_user": FRAME_READER,
                "csrf_token": CSRF_PLACEHOLDER,
                "flashes": [],
                "form_refusals": {},
                "page_content": Markup(FRAME_CONTENT),
            }
        )
        copy.frames[signed] = frame
    page = (
        frame.replace(READER_ID, str(viewer.id))
        .replace(READER_NAME, str(escape(viewer.display_name)))
        .replace(CSRF_PLACEHOLDER, token)
        .replace(FRAME_CONTENT, content, 1)
    )
    return HTMLResponse(page)


def _detach(context: Mapping[str, Any]) -> None:
    """Take every database object the copy holds, and those loaded with them, out of the request's session as they
    are loaded now (what a successful request's closed session leaves them as): nothing that session does later,
    a rollback expiring what it loaded included, reaches the copy. What they would still load lazily stays
    unavailable, as it is for a copy after any request. The request's pending changes are flushed first, so that
    none is dropped with its object."""
    stack: list[Any] = list(context.values())
    seen: set[int] = set()
    flushed: set[int] = set()  # sessions checked for pending changes
    while stack:
        value = stack.pop()
        if value is None or isinstance(value, str | bytes | int | float) or id(value) in seen:
            continue
        seen.add(id(value))
        state = inspect(value, raiseerr=False)
        if isinstance(state, InstanceState):
            stack.extend(state.dict[rel.key] for rel in state.mapper.relationships if rel.key in state.dict)
            session = state.session
            if session is not None:
                # A read has nothing to flush: only a request that changed something (a petition closed on read)
                # writes it before its objects leave the session.
                if id(session) not in flushed:
                    if session.new or session.dirty or session.deleted:
                        session.flush()
                    flushed.add(id(session))
                session.expunge(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(value)
        elif is_dataclass(value) and not isinstance(value, type):
            stack.extend(getattr(value, field.name) for field in fields(value))


_CHECKED: dict[int, bool] = {}


def _has_placeholders(request: Request) -> bool:
    """Whether show.html marks where each reader's part goes (read once per loaded template)."""
    env = request.app.state.templates.env
    template = env.get_template("petitions/show.html")
    found = _CHECKED.get(id(template))
    if found is None:
        source = env.loader.get_source(env, "petitions/show.html")[0]
        found = _CHECKED[id(template)] = all(f"<!--reader:{name}-->" in source for name in READER_PARTS)
    return found


def _shared_content(request: Request, context: dict[str, Any], kind: str) -> str:
    """The content of the page for no reader in particular: placeholders for the reader's parts and token."""
    page_context = {
        **NO_READER,
        **context,
        "shared_render": True,
        "current_user": MEMBER_STAND_IN if kind == MEMBER else None,
        "csrf_token": CSRF_PLACEHOLDER,
        "flashes": [],
    }
    html = request.app.state.templates.get_template("petitions/show.html").render(
        {**request.app.state.templates.env.globals, "request": request, **base_context(request), **page_context}
    )
    start = html.index(CONTENT_START) + len(CONTENT_START)
    return html[start : html.index(CONTENT_END, start)]


def _fill(request: Request, content: str, context: dict[str, Any], parts: dict[tuple[Any, ...], str]) -> str:
    """The copy's content with the reader's parts filled in; the CSRF token still a placeholder. `parts`: the
    rendered parts kept, by what of the reader each one shows (`_part_key`): the copy's for members answered
    before the route, a dict of this request's own for any other page."""
    env = request.app.state.templates
    reader_context = {
        **env.env.globals,
        "request": request,
        **base_context(request),
        **context,
        "current_user": getattr(request.state, "viewer", None),
        "csrf_token": CSRF_PLACEHOLDER,
    }
    for name, template in READER_PARTS.items():
        key = _part_key(name, context)
        part = parts.get(key) if key is not None else None
        if part is None:
            part = env.get_template(template).render(reader_context)
            if key is not None:
                parts[key] = part
        content = content.replace(f"<!--reader:{name}-->", part, 1)
    patched = context.get("reader_comments") or []
    if patched:
        actions = env.get_template("comments/_comment.html").make_module(reader_context).comment_actions
        for node in patched:
            start, end = f"<!--actions:{node.comment.id}-->", f"<!--/actions:{node.comment.id}-->"
            before, found, rest = content.partition(start)
            if found:
                content = before + str(actions(node)) + rest.split(end, 1)[1]
    return content


def _part_key(name: str, context: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What a member's part shows of them, when that is all it shows: the follow form, and the sign panel of a
    member who has not signed (their token's state and the sign form's groups). A signer's panel shows their own
    signature and receipt: rendered for each. The sign panel was a third of a member's page's CPU once the frame
    was kept (issue #24), and the same for every member who had not signed."""
    if name == "follow":
        return (name, bool(context["following"]))
    if name == "sign_panel" and context["own_signature"] is None and context["own_receipt"] is None:
        groups = tuple(
            tuple((group.id, group.name) for group in context[kind]) for kind in ("departments", "locations")
        )
        return (name, bool(context["token_burned"]), bool(context["token_unspent"]), groups)
    return None
