"""The test suite hashes passwords cheaply (tests/conftest.py); production must keep argon2id at full cost."""

from __future__ import annotations

import subprocess
import sys

from app.core import security
from tests.conftest import PASSWORD, project_root

# What a fresh process that builds the production app hashes with: the parameters stored in the hash itself.
PRODUCTION_PROBE = """
from app.core.security import hash_password
from app.core.settings import Settings
from app.main import create_app

create_app(Settings(environment="production", database_url="sqlite://", secret_key="p" * 40, smtp_host="127.0.0.1",
                    base_url="https://petitions.example.org"))
print(hash_password("probe"))
"""


def test_production_hashes_with_argon2id_at_64_mib_3_passes_4_lanes() -> None:
    assert security.ARGON2_COST == {"memory_cost": 65536, "rounds": 3, "parallelism": 4}
    result = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        check=False,
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("$argon2id$v=19$m=65536,t=3,p=4$"), result.stdout


def test_the_suite_hashes_cheaply_and_still_verifies_full_cost_hashes() -> None:
    assert security.hash_password(PASSWORD).startswith("$argon2id$v=19$m=8,t=1,p=1$")
    full_cost = security._password_context(security.ARGON2_COST).hash(PASSWORD)
    assert security.verify_password(PASSWORD, full_cost)
    assert not security.verify_password("wrong " + PASSWORD, full_cost)
