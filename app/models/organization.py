"""What admins set for the organization from the admin pages, over the deployment's defaults."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class OrganizationRules(Base):
    """One row (id 1). A column left empty means "the deployment's setting applies"."""

    __tablename__ = "organization_rules"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # Comma-separated, lower case, without "@".
    allowed_email_domains: Mapped[str | None] = mapped_column(String(1000))
    response_threshold: Mapped[int | None]
    escalation_threshold: Mapped[int | None]
    response_days: Mapped[int | None]
    sponsors_required: Mapped[int | None]
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class OrganizationBranding(Base):
    """One row (id 1): the organization's name, logo and accent colour as its people see them in the header.

    Empty columns mean the deployment's defaults. The logo is kept as the sanitised bytes the server wrote itself
    (app/organization/branding.py), never the file as uploaded."""

    __tablename__ = "organization_branding"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(String(80))
    accent_colour: Mapped[str | None] = mapped_column(String(7))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_type: Mapped[str | None] = mapped_column(String(20))
    logo_hash: Mapped[str | None] = mapped_column(String(64))
    logo_width: Mapped[int | None]
    logo_height: Mapped[int | None]
    # Tied to an admin's account: the hour is all it keeps.
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class EligibleAddress(Base):
    """An imported list of members who may sign. Only a keyed hash of each address is kept."""

    __tablename__ = "eligible_addresses"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    imported_at: Mapped[datetime]
