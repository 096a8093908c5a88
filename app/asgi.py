"""The ASGI entry point for servers: `uvicorn app.asgi:app`."""

from app.core.settings import Environment
from app.core.templating import compile_all
from app.main import create_app

app = create_app()
if app.state.settings.environment is Environment.production:
    # 0.75 s of CPU when each server process starts, rather than from its first readers' pages. Not in
    # development or tests, whose servers start often and serve few pages.
    compile_all(app.state.templates)
