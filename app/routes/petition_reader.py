"""The petition page for a signed-in worker, answered from the shared copy before the route runs (issue #24).

Almost every reader of an employee platform is signed in, and once a petition's page is shared (app/petitions/
page_cache.py), what is left of a signed-in page is the reader's own parts: a few hundred microseconds of Jinja. The
route around it cost several times that: FastAPI's routing and dependencies (the branding, the session's account,
the policy, the database session), three hops to a worker thread, and five statements, each built, compiled and
loaded through the ORM. Here, for a plain member (verified, no role, organizing nothing here), the page is answered
in one hop to a worker thread with one statement (app/petitions/repository.py, `signed_in_reader`): the session's
account, whether it may read the petition, its own state there, and the petition's row.

Where there is no copy of the current version to fill (nor the one before while another request makes it:
`PageCopies.previous`), the copy is made here, as the route makes it (`petitions_pages.shared_page_context`), in the
same hop: after each comment on a busy petition that page went the route, three hops of queueing under load.

Anything else goes on to the route, which renders as before: no session cookie or an unknown one, a flash message to
show, a reader with a role or who organizes the petition, a reader who wrote or endorses one of its comments (the
route marks those comments), a petition past its deadline (the route closes it), or one the reader may not read
(the route answers 404). What the route decides is decided here the same way: the petition's visibility by
`readable_to_everyone` (the route's `get_readable`), the session by its digest and expiry (app/accounts/sessions.py),
the reader's kind by `page_cache.reader_kind`'s rule. tests/test_page_cache_reader.py compares both answers byte for
byte.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.database import get_sessionmaker, read_without_transaction
from app.core.errors import AppError
from app.core.security import SESSION_COOKIE, token_digest
from app.core.templating import FLASH_COOKIE
from app.models.lifecycle import PetitionState
from app.models.signatures import GroupKind
from app.organization import branding as organization_branding
from app.petitions import page_cache, repository
from app.petitions import service as petitions
from app.routes import petitions_pages
from app.signatures import groups as signer_groups

PATH = re.compile(r"^/petitions/(\d{1,18})$")


@dataclass(frozen=True)
class _Route:
    """What the request log reads of the route (the page's line is counted by the hour, as the route's is)."""

    path_format: str


ROUTE = _Route("/petitions/{petition_id}")


class ReaderPages:
    """Answers a plain member's petition page from the shared copy; passes every other request on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = PATH.match(scope["path"])
        cookie = _session_cookie(scope) if match else None
        if match is None or cookie is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = await anyio.to_thread.run_sync(functools.partial(_page, request, int(match.group(1)), cookie))
        if response is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        await response(scope, receive, send)


def _session_cookie(scope: Scope) -> str | None:
    """The session cookie, unless there is none or a flash message waits to be shown (the route shows it)."""
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookies = cookie_parser(value.decode("latin-1"))
            session = cookies.get(SESSION_COOKIE)
            if not session or len(session) > 128 or FLASH_COOKIE in cookies:
                return None
            return session
    return None


def _sessions(app: FastAPI) -> sessionmaker[Session] | Any:
    """The sessions the app's routes would use (a test binds them to its own transaction, as it does the routes')."""
    override = app.dependency_overrides.get(get_sessionmaker)
    return override() if override is not None else app.state.sessionmaker


def _page(request: Request, petition_id: int, cookie: str) -> HTMLResponse | None:
    app = request.app
    rt = app.state.runtime
    version = rt.page_versions.get(petition_id)  # before anything is read: a copy never predates its version
    if version is None:
        return None
    with _sessions(app)() as db:
        read_without_transaction(db)
        now = rt.clock.now()
        reader = repository.signed_in_reader(db=db, petition_id=petition_id, digest=token_digest(cookie), now=now)
        if reader is None or not reader.readable or not reader.verified or reader.has_roles:
            return None
        if reader.state.organizer or reader.state.in_discussion:
            return None
        branding = organization_branding.current(db=db, rt=rt)
        copies, key = page_cache.copies_of(app), (petition_id, page_cache.MEMBER, repr(branding))
        # The current copy or, while another request makes it, the one before (`PageCopies.previous`); else the copy
        # is made here, from the petition as it is now.
        copy = copies.get(key, version, reader.petition_row) or copies.previous(key, reader.petition_row)
        if copy is not None:
            petition = copy.context["petition"]  # the copy's: its row is the one just read, but for its counts
        else:
            try:
                petition = petitions.get_or_404(db=db, petition_id=petition_id)  # as the route loads it
            except AppError:
                return None  # gone since the reader's statement: the route answers
            if not petitions.readable_by_anyone(petition):
                return None  # hidden, or its rejection's reason withheld, since that statement: the route decides
        if petition.state is PetitionState.open and petition.deadline is not None and petition.deadline <= now:
            return None  # the route closes it first
        own = reader.signature
        signing = own is None and petition.collect_attributes and petition.state is PetitionState.open
        offered = signer_groups.offered(db=db, rt=rt) if signing else {}
        request.state.branding = branding
        request.state.viewer = page_cache.PageReader(id=reader.user_id, display_name=reader.display_name)

        def context(shared: Mapping[str, Any]) -> dict[str, Any]:
            # As app/routes/petitions_pages.py's _reader_context has it for a verified reader who organizes nothing
            # here.
            issuing_key = shared["issuing_key"]
            return {
                "is_organizer": False,
                "following": reader.state.following,
                "own_signature": own,
                "own_receipt": reader.leaf_hash.hex()
                if own is not None and shared["log_checkpoint"] is not None and reader.leaf_hash
                else None,
                "organizers": [],
                "token_burned": own is None and issuing_key is not None and reader.state.token_burned,
                "token_unspent": own is None
                and issuing_key is not None
                and petition.state is PetitionState.open
                and reader.state.token_unspent,
                "departments": offered.get(GroupKind.department, []),
                "locations": offered.get(GroupKind.location, []),
                "reader_comments": [],
            }

        if copy is None:
            # What the route would do for this reader (app/routes/petitions_pages.py, `show`), without its three hops
            # to a worker thread: after each comment on a busy petition, the one page that makes the new copy went
            # the route, a few hundred milliseconds of queueing under load (issue #24: the page p99). A database
            # that fails meanwhile leaves the answer to the route, whose error handlers say it in plain words (503).
            try:
                return page_cache.page(
                    request=request,
                    rt=rt,
                    copies=copies,
                    petition=petition,
                    kind=page_cache.MEMBER,
                    version=version,
                    shared=lambda: petitions_pages.shared_page_context(request, db, rt, petition),
                    reader=context,
                )
            except (OperationalError, SQLAlchemyTimeoutError, AppError):
                return None
    return page_cache.answer(request, rt, copy, petition, context)
