"""Every table, imported in one place for Alembic and the tests."""

from app.accounts.models import OneTimeCode, RoleGrant, User, UserSession
from app.core.database import Base
from app.mail.models import OutboxMessage

__all__ = ["Base", "OneTimeCode", "OutboxMessage", "RoleGrant", "User", "UserSession"]
