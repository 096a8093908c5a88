"""Export at scale: a petition with 1,000,000 signatures, exported in every format through the real command.

    .venv/bin/python bench/export_scale.py                       # 1,000,000 signatures on PostgreSQL
    .venv/bin/python bench/export_scale.py --signatures 100000 --no-write

Each export runs as its own `undersigned export` process, so its peak memory (max RSS, read from the kernel
when the process ends) is that export's alone. Half the signers show their name to everyone and half to the
organizers only (stored encrypted, so the export decrypts every second name); they come from 20 departments
and 8 locations. Prints a table and records it (bench/results/, docs/benchmarks.md). Targets: CSV and JSON signer lists
under 10 s and 200 MB.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import migrations
from app.core.clock import SystemClock
from app.core.database import build_engine, build_sessionmaker
from app.core.runtime import build_runtime
from app.core.settings import Settings
from app.core.templating import build_templates
from app.models.accounts import Role, RoleGrant, User
from app.models.signatures import GroupKind, SignerGroup
from app.petitions import service as petitions
from app.petitions.schemas import PetitionDraft
from app.signatures.service import name_context
from bench.common import database_name, publish

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = database_name("undersigned_export_bench")
TARGET_SECONDS, TARGET_MB = 10.0, 200.0


def prepare(signatures: int) -> tuple[str, int]:
    admin = build_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    url = make_url(POSTGRES_ADMIN).set(database=DATABASE).render_as_string(hide_password=False)
    migrations.upgrade(url)
    settings = Settings(
        environment="test",
        database_url=url,
        secret_key=SECRET,
        sponsors_required=1,
        response_threshold=1000,
        escalation_threshold=500_000,
    )
    rt = build_runtime(settings, clock=SystemClock(), templates=build_templates(settings).env)
    engine = build_engine(url)
    now = datetime.now(UTC)
    with build_sessionmaker(engine).begin() as db:
        creator = User(
            email="creator@example.org", display_name="Creator", email_verified_at=now, created_at=now, roles=[]
        )
        moderator = User(
            email="moderator@example.org",
            display_name="Moderator",
            email_verified_at=now,
            created_at=now,
            roles=[RoleGrant(role=Role.moderator, granted_at=now)],
        )
        groups = [SignerGroup(kind=GroupKind.department, name=f"Department {i}", active=True) for i in range(20)]
        groups += [SignerGroup(kind=GroupKind.location, name=f"Location {i}", active=True) for i in range(8)]
        db.add_all([creator, moderator, *groups])
        db.flush()
        petition = petitions.create_draft(
            db=db,
            rt=rt,
            creator=creator,
            form=PetitionDraft(
                title="Export at scale",
                ask="Deliver every name.",
                background="Measured.",
                category="other",
                collect_attributes=True,
            ),
        )
        petitions.submit_for_sponsors(db=db, rt=rt, petition=petition, actor=creator)
        petitions.sponsor(
            db=db, rt=rt, petition=petition, token=petitions.sponsor_token(rt=rt, petition=petition), user=moderator
        )
        petitions.open_petition(db=db, rt=rt, petition=petition, actor=moderator)
        petition_id = petition.id
        departments = [group.id for group in groups if group.kind == GroupKind.department]
        locations = [group.id for group in groups if group.kind == GroupKind.location]
    # COPY the signature rows: anonymous of account (account_id NULL), which the row shape allows.
    started = time.perf_counter()
    generator = random.Random(7)
    context = name_context(petition_id)
    first_hour = (now - timedelta(days=60)).replace(minute=0, second=0, microsecond=0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            with cursor.copy(
                "COPY signatures (id, petition_id, visibility, public_name, sealed_name, notify_updates,"
                " signed_hour, department_id, location_id) FROM STDIN"
            ) as copy:
                for index in range(signatures):
                    name = f"Signer {index:07d}"
                    public = index % 2 == 0
                    copy.write_row(
                        (
                            secrets.token_hex(16),
                            petition_id,
                            "public" if public else "organizers",
                            name if public else None,
                            None if public else rt.sealer.seal(name, context=context),
                            False,
                            first_hour + timedelta(hours=index * 1440 // signatures),
                            generator.choice(departments) if index % 10 else None,
                            generator.choice(locations),
                        )
                    )
            cursor.execute("UPDATE petitions SET signature_count = %s WHERE id = %s", (signatures, petition_id))
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    print(f"{signatures:,} signatures written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return url, petition_id


def export(url: str, petition_id: int, kind: str, fmt: str, workdir: Path) -> tuple[float, float, int]:
    """Run one export as its own process; returns (seconds, peak RSS in MB, bytes written)."""
    out = workdir / f"{kind}.{fmt}"
    env = {
        **os.environ,
        "UNDERSIGNED_DATABASE_URL": url,
        "UNDERSIGNED_SECRET_KEY": SECRET,
        "UNDERSIGNED_ENVIRONMENT": "test",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "100",
    }
    started = time.perf_counter()
    command = str(Path(sys.executable).parent / "undersigned")
    process = subprocess.Popen(
        [command, "export", str(petition_id), "--kind", kind, "--format", fmt, "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"export {kind} {fmt} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signatures", type=int, default=1_000_000)
    parser.add_argument(
        "--no-write", action="store_true", help="Print only; record nothing in bench/results/ or docs/benchmarks.md."
    )
    args = parser.parse_args()
    url, petition_id = prepare(args.signatures)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for kind, fmt in (
            ("signers", "csv"),
            ("signers", "json"),
            ("signers", "xlsx"),
            ("signers", "pdf"),
            ("tally", "csv"),
            ("tally", "json"),
            ("tally", "xlsx"),
            ("tally", "pdf"),
        ):
            seconds, megabytes, size = export(url, petition_id, kind, fmt, Path(workdir))
            rows.append((kind, fmt, seconds, megabytes, size))
            print(f"{kind} {fmt}: {seconds:.1f} s, {megabytes:.0f} MB peak, {size:,} bytes", file=sys.stderr)
    admin = build_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    admin.dispose()

    report = io.StringIO()
    report.write(f"### Export at scale: {args.signatures:,} signatures, PostgreSQL ({datetime.now(UTC):%Y-%m-%d})\n\n")
    report.write(f"Command: `.venv/bin/python bench/export_scale.py --signatures {args.signatures}`\n\n")
    report.write(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}. Each export is one `undersigned export` process; "
        "peak memory is its max RSS, interpreter and app included.\n\n"
    )
    report.write("| export | format | seconds | peak MB | file bytes | target |\n|---|---|---|---|---|---|\n")
    for kind, fmt, seconds, megabytes, size in rows:
        target = ""
        if kind == "signers" and fmt in ("csv", "json"):
            met = seconds < TARGET_SECONDS and megabytes < TARGET_MB
            target = f"{'met' if met else 'NOT met'} (< {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB)"
        note = " (first 20,000 names)" if kind == "signers" and fmt == "pdf" else ""
        report.write(f"| {kind}{note} | {fmt} | {seconds:.1f} | {megabytes:.0f} | {size:,} | {target} |\n")
    publish(report.getvalue(), bench="export_scale", write=not args.no_write)


if __name__ == "__main__":
    main()
