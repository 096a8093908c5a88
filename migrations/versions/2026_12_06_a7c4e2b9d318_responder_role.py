"""A response names its responder's role as they gave it, shown with their name on the petition's page.

Revision ID: a7c4e2b9d318
Revises: f4b2d8e6a913
Create Date: 2026-12-06 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c4e2b9d318"
down_revision: str | None = "f4b2d8e6a913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("petition_responses") as batch_op:
        batch_op.add_column(sa.Column("responder_role", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("petition_responses") as batch_op:
        batch_op.drop_column("responder_role")
