"""What admins set for the organization from the admin pages, over the deployment's defaults."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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
