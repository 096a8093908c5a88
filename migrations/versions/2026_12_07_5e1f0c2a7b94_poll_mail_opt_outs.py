"""Mail about polls opening can be turned off (issue #25).

- poll_mail_opt_outs: an account that turned off the mail telling it a poll put to it has opened; for the whole
  account (a pulse poll names no petition), with the day only.

Revision ID: 5e1f0c2a7b94
Revises: 93550bbaf9f8
Create Date: 2026-12-07 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1f0c2a7b94"
down_revision: str | None = "93550bbaf9f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "poll_mail_opt_outs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_poll_mail_opt_outs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_poll_mail_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("poll_mail_opt_outs")
