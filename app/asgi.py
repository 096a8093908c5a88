"""The ASGI entry point for servers: `uvicorn app.asgi:app`."""

import gc

from app.core.settings import Environment
from app.core.templating import compile_all
from app.main import create_app

app = create_app()
if app.state.settings.environment is Environment.production:
    # 0.75 s of CPU when each server process starts, rather than from its first readers' pages. Not in
    # development or tests, whose servers start often and serve few pages.
    compile_all(app.state.templates)
# What is made by now (the modules, the app, its routes and templates) lives as long as the process: frozen, the
# collector's full passes no longer walk it. Each such pass held the interpreter lock, and so the whole process,
# for up to 190-225 ms under issue #24's viral petition, four times a run of 30 s each process: the pages caught
# in one were its page p99. Frozen, the longest pause was 35-50 ms (gc.callbacks, 2026-12-07). Collected first, so
# that no garbage made while starting is frozen with the rest.
gc.collect()
gc.freeze()
