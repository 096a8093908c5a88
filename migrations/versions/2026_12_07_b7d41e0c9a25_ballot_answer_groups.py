"""Ballot answers' groups (issue #25): the department or location an answer is counted under for the breakdown
at close, sealed (AES-GCM under the deployment's keys, a random nonce each), never in the public log.

Revision ID: b7d41e0c9a25
Revises: 5e1f0c2a7b94
Create Date: 2026-12-07 13:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d41e0c9a25"
down_revision: str | None = "5e1f0c2a7b94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ballot_answers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_group", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ballot_answers", schema=None) as batch_op:
        batch_op.drop_column("sealed_group")
