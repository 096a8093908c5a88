"""One wallet on every device: the server keeps only that an account's wallet exists.

- wallet_checks: per account, the 16-byte check value derived from the wallet secret (never the secret), and the
  day the wallet was started. A device holding a recovery code compares its check with this one before using it;
  a second device that races to start another wallet is refused. Deleted with the account.

Revision ID: c1a2b3c4d5e6
Revises: c19a1f0e2d34
Create Date: 2026-12-06 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c1a2b3c4d5e6"
down_revision: str | None = "c19a1f0e2d34"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wallet_checks",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("check", sa.LargeBinary(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_wallet_checks_account_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_wallet_checks")),
    )


def downgrade() -> None:
    op.drop_table("wallet_checks")
