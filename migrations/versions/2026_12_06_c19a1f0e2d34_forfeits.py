"""Forfeits: a worker whose token is on no device they have may sign by name and give up anonymity for that
petition; the public count of forfeits tightens the bound.

- issuing_keys.forfeited: how many issued tokens were given up by a signature with a name that did not carry
  the token (its issuance is marked burned, as for a token spent by name). It names nobody and dates nothing:
  anyone can check anonymous signatures <= tokens_issued - spent_by_name - forfeited, and the count is the most
  a dishonest forfeit (giving the token up, then using it anyway from the device that holds it) could add.

Revision ID: c19a1f0e2d34
Revises: c18e3b8f0a21
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c19a1f0e2d34"
down_revision: str | None = "c18e3b8f0a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issuing_keys") as batch_op:
        batch_op.add_column(sa.Column("forfeited", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    """The forfeits' issuances stay burned (the safe side); only their public count goes."""
    with op.batch_alter_table("issuing_keys") as batch_op:
        batch_op.drop_column("forfeited")
