"""The log counts what the page shows: issuance totals committed in the log, each checkpoint's figures kept.

- log_heads.tokens_issued, log_heads.spent_by_name: the running totals the log's last "issuance" entry commits;
  the next batch appends a new entry when the issuing key's counts differ (0 for logs begun before: their next
  batch commits the totals).
- log_checkpoints.counts: what the entries up to the checkpoint add up to (signatures, withdrawals, tally,
  anonymous, forfeits, the issuance totals), as canonical JSON; NULL for checkpoints made before, counted from
  the entries when read.

Revision ID: d20a7c3e5f11
Revises: c1a2b3c4d5e6
Create Date: 2026-12-06 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d20a7c3e5f11"
down_revision: str | None = "c1a2b3c4d5e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("log_heads") as batch_op:
        batch_op.add_column(sa.Column("tokens_issued", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("spent_by_name", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("log_checkpoints") as batch_op:
        batch_op.add_column(sa.Column("counts", sa.Text(), nullable=True))


def downgrade() -> None:
    """The issuance entries stay in the logs (they are signed); only the columns that mirror them go."""
    with op.batch_alter_table("log_checkpoints") as batch_op:
        batch_op.drop_column("counts")
    with op.batch_alter_table("log_heads") as batch_op:
        batch_op.drop_column("spent_by_name")
        batch_op.drop_column("tokens_issued")
