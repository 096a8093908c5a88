"""The application factory: `create_app(settings)` builds everything; nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app import jobs
from app.anonymous import service as anonymous_service
from app.anonymous.queue import anonymous_queue
from app.ballots import answers as ballot_answers
from app.comments import anonymous as anonymous_comments
from app.comments.queue import comment_queue
from app.core import openapi, threads
from app.core.clock import Clock, SystemClock, to_the_hour
from app.core.database import build_engine, build_replica_sessionmaker, build_sessionmaker
from app.core.error_handlers import install_error_handlers
from app.core.livepolls import SharedTally
from app.core.logging import COARSE_TIME, configure_logging
from app.core.pagecache import SharedPageCache
from app.core.runtime import build_runtime
from app.core.settings import Environment, Settings
from app.core.templating import build_templates
from app.core.versions import NotModified, StampVersion
from app.core.web import RequestContextMiddleware, csrf_protect
from app.log import service as signature_log
from app.organization import eligibility
from app.routes import (
    accounts_api,
    accounts_pages,
    admin_pages,
    anonymous_api,
    anonymous_pages,
    ballot_credentials_api,
    ballots_api,
    ballots_pages,
    comments_api,
    comments_pages,
    home_pages,
    log_api,
    mail_pages,
    moderation_api,
    moderation_pages,
    organization_api,
    organization_pages,
    petitions_api,
    petitions_pages,
    reports_api,
    reports_pages,
    responses_api,
    responses_pages,
    scoreboard_api,
    scoreboard_pages,
    signatures_api,
    signatures_pages,
)
from app.routes import anonymous_link_api as link_api
from app.routes import anonymous_link_pages as link_pages
from app.routes.petition_reader import ReaderPages

logger = logging.getLogger("undersigned.app")
# The thread that writes the last batches as the server stops (see _write_last_batches_within).
LAST_BATCH_THREAD = "undersigned-last-batch"

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings.database_url, **_pool_options(settings))
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        app.state.write_sessionmaker = build_sessionmaker(engine, writes=True)
        # Public reads that may lag by a moment go to the replica when there is one (docs/scaling.md).
        replica = (
            build_engine(settings.database_replica_url, **_pool_options(settings))
            if settings.database_replica_url
            else None
        )
        app.state.replica_sessionmaker = build_replica_sessionmaker(replica) if replica is not None else None
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        threads.finish_begun_first(anyio.to_thread.current_default_thread_limiter())  # app/core/threads.py
        # The live polls' middleware reads page versions on this loop, with a client of its own (app/core/versions.py).
        await runtime.page_versions.open_loop_client()
        tasks = []
        if settings.run_inprocess_worker:
            tasks.append(asyncio.create_task(_outbox_loop(app)))
        if settings.anonymous_batch_seconds:
            tasks.append(asyncio.create_task(_anonymous_batches(app)))
            tasks.append(asyncio.create_task(_anonymous_comment_batches(app)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await _write_last_batches_within(app, settings.last_batch_seconds)
            await runtime.page_versions.close_loop_client()
            engine.dispose()
            if replica is not None:
                replica.dispose()

    app = FastAPI(
        title="Undersigned",
        version="0.1.0",
        summary="Employee petitions and collective feedback that protect the people who sign them.",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN; /openapi.json is the contract
        redoc_url=None,
        dependencies=[Depends(csrf_protect)],
    )
    templates = build_templates(settings)
    runtime = build_runtime(settings, clock=clock or SystemClock(), templates=templates.env)
    app.state.settings = settings
    app.state.replica_sessionmaker = None  # the lifespan opens the replica's engine, if one is configured
    app.state.keyring = runtime.keyring
    app.state.templates = templates
    app.state.runtime = runtime

    # Inside the request context (added first, so it runs within it): a shared copy still gets a new reader's
    # CSRF cookie, the security headers and its line in the request log.
    # The live polls' ETags: stamped inside the shared copies (a copy keeps its version's tag), and a poll naming
    # the current version answered 304 outside them, before anything reads the database (app/core/versions.py).
    # Innermost: a plain member's petition page from its shared copy, before routing (app/routes/petition_reader.py).
    app.add_middleware(ReaderPages)
    app.add_middleware(StampVersion, versions=runtime.page_versions)
    app.add_middleware(SharedPageCache, seconds=settings.shared_page_ttl, csrf_token=runtime.keyring.csrf_token)
    # Between them: a public petition's tally answer shared by every reader's poll for a few seconds, while only its
    # count moves (app/core/livepolls.py).
    app.add_middleware(SharedTally, versions=runtime.page_versions, seconds=settings.shared_page_ttl)
    app.add_middleware(NotModified, versions=runtime.page_versions)
    app.add_middleware(
        RequestContextMiddleware,
        secure_cookies=settings.secure_cookies,
        hsts=settings.environment is Environment.production,
        max_body_bytes=MAX_BODY_BYTES,
        # The member list's own limit (5 MB) plus room for the form around it.
        larger_bodies={"/admin/eligibility": eligibility.MAX_IMPORT_BYTES + 64 * 1024},
    )
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    # Routes are matched in order, and each miss costs: the signing endpoints, the busiest writes, come first.
    for router in (
        signatures_api.router,
        signatures_pages.router,
        petitions_api.router,
        petitions_pages.router,
        home_pages.router,
        responses_api.router,
        responses_pages.router,
        scoreboard_pages.router,
        scoreboard_api.router,
        reports_pages.router,
        reports_api.router,
        accounts_pages.router,
        accounts_api.router,
        moderation_pages.router,
        moderation_api.router,
        admin_pages.router,
        mail_pages.router,
        comments_api.router,
        comments_pages.router,
        anonymous_api.router,
        anonymous_pages.router,
        ballots_api.router,
        ballot_credentials_api.router,
        link_api.router,
        link_pages.router,
        log_api.router,
        organization_api.router,
        organization_pages.router,
        ballots_pages.router,
    ):
        # Pages (the routes kept out of the API schema) show the organization's name, logo and colour.
        pages = any(not getattr(route, "include_in_schema", True) for route in router.routes)
        app.include_router(router, dependencies=[Depends(organization_pages.attach)] if pages else None)
    openapi.install(app)
    return app


def _write_anonymous_batch(app: FastAPI) -> int:
    """The batch: anonymous signatures written, then everything waiting appended to the logs, shuffled."""
    written = anonymous_service.write_batch(sessions=app.state.write_sessionmaker, rt=app.state.runtime)
    # Ballot answers (issue #25) go out with the same batch, by the same rule, each ballot in its own log.
    ballot_answers.write_batch(sessions=app.state.write_sessionmaker, rt=app.state.runtime)
    signature_log.flush(sessions=app.state.write_sessionmaker, rt=app.state.runtime)
    return written


async def _anonymous_batches(app: FastAPI) -> None:
    """Every `anonymous_batch_seconds`, write the anonymous signatures this process accepted, shuffled."""
    interval = app.state.settings.anonymous_batch_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(_write_anonymous_batch, app)
        except Exception:  # the entries are lost to this process; their wallets resubmit them
            logger.exception("writing a batch of anonymous signatures failed", extra={COARSE_TIME: True})


def _pool_options(settings: Settings) -> dict[str, float]:
    if settings.database_url.startswith("sqlite"):
        return {}  # SQLAlchemy's default pool for the database kind (an in-memory one takes no pool options)
    return {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_timeout": settings.database_pool_timeout_seconds,
    }


async def _outbox_loop(app: FastAPI) -> None:
    """Development only: the worker's periodic jobs, run from inside the web process."""
    settings: Settings = app.state.settings
    while True:
        try:
            await asyncio.to_thread(jobs.run_once, sessions=app.state.write_sessionmaker, rt=app.state.runtime)
        except Exception:
            logger.exception("outbox delivery round failed")
        await asyncio.sleep(settings.outbox_poll_seconds)


def _write_comment_batch(app: FastAPI) -> int:
    return anonymous_comments.write_batch(sessions=app.state.write_sessionmaker, rt=app.state.runtime)


def _write_last_comment_batch(app: FastAPI) -> int:
    return anonymous_comments.write_batch(sessions=app.state.write_sessionmaker, rt=app.state.runtime, final=True)


def _write_last_batches(app: FastAPI) -> None:
    """What this process accepted and has not written yet: the groups the batching rule lets out are written now; a
    group held back (kept in this process's memory only) is sent again by its wallet, which keeps its token until it
    sees the entry published. Anonymous comments held in memory would be lost with the process: they all go out."""
    runtime = app.state.runtime
    if len(anonymous_queue(runtime)) or ballot_answers.waiting(runtime):
        try:
            _write_anonymous_batch(app)
        except Exception:
            logger.exception("writing the last batch of anonymous signatures failed", extra={COARSE_TIME: True})
    if len(comment_queue(runtime)):
        try:
            _write_last_comment_batch(app)
        except Exception:
            logger.exception("writing the last batch of anonymous comments failed", extra={COARSE_TIME: True})


async def _write_last_batches_within(app: FastAPI, seconds: float) -> None:
    """Write the last batches, waiting for them at most `seconds`. A database that does not answer must not hold
    the process up as it stops: on SQLite each of the batch's transactions waits 30 s for a write lock another
    holds, and on PostgreSQL a row lock waits without end (a test that held SQLite's write lock hung its app's
    shutdown). The writer runs on a daemon thread; past the deadline the server stops without it, and what it
    had not committed is rolled back as the process ends. Logged by the hour, and without what the batch held."""
    runtime = app.state.runtime
    if not len(anonymous_queue(runtime)) and not len(comment_queue(runtime)) and not ballot_answers.waiting(runtime):
        return
    written = threading.Event()

    def write() -> None:
        try:
            _write_last_batches(app)
        finally:
            written.set()

    threading.Thread(target=write, name=LAST_BATCH_THREAD, daemon=True).start()
    if not await anyio.to_thread.run_sync(written.wait, seconds):
        logger.warning(
            "The last batch of anonymous signatures, answers and comments was not written in time: the database "
            "did not answer. The server stops without waiting longer, and what it had not written is lost (wallets "
            "send their signatures and answers again; its anonymous comments are gone).",
            extra={COARSE_TIME: True, "waited_seconds": seconds},
        )


async def _anonymous_comment_batches(app: FastAPI) -> None:
    """Anonymous comments go out at the top of each hour (app/comments/anonymous.py): the hour they carry is then
    the moment they appeared, so they sort, and reach readers' live updates, in their place among named ones."""
    clock = app.state.runtime.clock
    while True:
        now = clock.now()
        next_hour = to_the_hour(now) + timedelta(hours=1)
        await asyncio.sleep(max(1.0, (next_hour - now).total_seconds()))
        try:
            await anyio.to_thread.run_sync(_write_comment_batch, app)
        except Exception:  # kept in the queue by write_batch itself
            logger.exception("writing a batch of anonymous comments failed", extra={COARSE_TIME: True})
