"""The servers' entry point (app/asgi.py): what it does to the process beyond making the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import project_root


def test_the_objects_made_at_start_are_frozen_out_of_the_collectors_passes(tmp_path: Path) -> None:
    """Imported as uvicorn imports it, in a process of its own (freezing is for the whole process): the objects
    alive by then are in the collector's permanent generation. Before, none were, and each full pass walked them."""
    env = {
        **os.environ,
        "UNDERSIGNED_DATABASE_URL": f"sqlite:///{tmp_path / 'entry.db'}",
        "UNDERSIGNED_ENVIRONMENT": "test",
    }
    script = "import gc, app.asgi; print(gc.get_freeze_count())"
    frozen = subprocess.run(
        [sys.executable, "-c", script], cwd=project_root(), env=env, capture_output=True, text=True, check=True
    )
    assert int(frozen.stdout.strip()) > 100_000, frozen.stdout
