"""The demo organization `make run` starts with: a few workers and one account for each role."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role, RoleGrant, User
from app.core.runtime import Runtime
from app.core.security import hash_password

DEMO_PASSWORD = "demo-password-2026"
DEMO_ACCOUNTS = [
    ("worker", "Ana Silva", "ana"),
    ("worker", "Ben Okafor", "ben"),
    ("worker", "Chen Wei", "chen"),
    ("worker", "Dara Novak", "dara"),
    ("responder", "Riley Park (Leadership)", "riley"),
    ("moderator", "Morgan Lee", "morgan"),
    ("admin", "Avery Admin", "admin"),
]


def seed(*, sessions: sessionmaker[Session], rt: Runtime) -> list[tuple[str, str]]:
    domain = rt.settings.default_email_domain
    now = rt.clock.now()
    created: list[tuple[str, str]] = []
    password_hash = hash_password(DEMO_PASSWORD)
    with sessions.begin() as db:
        for role, name, local in DEMO_ACCOUNTS:
            email = f"{local}@{domain}"
            created.append((role, email))
            if db.scalar(select(User.id).where(User.email == email)) is not None:
                continue
            user = User(email=email, display_name=name, password_hash=password_hash, email_verified_at=now,
                        created_at=now, roles=[])
            if role != Role.worker:
                user.roles.append(RoleGrant(role=role, granted_at=now))
            db.add(user)
    return created
