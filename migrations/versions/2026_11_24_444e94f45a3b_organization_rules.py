"""The organization's rules set by admins (domains, thresholds), over the deployment's defaults.

Revision ID: 444e94f45a3b
Revises: c2b1e62ada21
Create Date: 2026-11-24 15:33:05.415770
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "444e94f45a3b"
down_revision: str | None = "c2b1e62ada21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organization_rules",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("allowed_email_domains", sa.String(length=1000), nullable=True),
        sa.Column("response_threshold", sa.Integer(), nullable=True),
        sa.Column("escalation_threshold", sa.Integer(), nullable=True),
        sa.Column("response_days", sa.Integer(), nullable=True),
        sa.Column("sponsors_required", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_organization_rules_updated_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_rules")),
    )


def downgrade() -> None:
    op.drop_table("organization_rules")
