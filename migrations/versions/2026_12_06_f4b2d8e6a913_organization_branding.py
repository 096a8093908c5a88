"""The organization's look: the name, logo and accent colour an admin sets for every page's header.

- organization_branding: one row (id 1); the logo is kept as the sanitised bytes the server wrote (PNG, or SVG
  written back from its parsed tree), with its media type, hash (the address's version) and header size;
  updated_at keeps the hour only, as rows tied to an account do.

Revision ID: f4b2d8e6a913
Revises: e3a9c5d1f207
Create Date: 2026-12-06 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f4b2d8e6a913"
down_revision: str | None = "e3a9c5d1f207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organization_branding",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=True),
        sa.Column("accent_colour", sa.String(length=7), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=20), nullable=True),
        sa.Column("logo_hash", sa.String(length=64), nullable=True),
        sa.Column("logo_width", sa.Integer(), nullable=True),
        sa.Column("logo_height", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_organization_branding_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_branding")),
    )


def downgrade() -> None:
    op.drop_table("organization_branding")
