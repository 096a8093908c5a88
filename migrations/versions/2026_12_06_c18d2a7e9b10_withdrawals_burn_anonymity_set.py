"""Withdrawals burn the token: no nullifier next to an account, and the public count of tokens spent by name.

- signatures.token_nullifier goes: it kept, next to the account, the nullifier of the token a named signature
  spent, so that withdrawing could free the token (and a dump could link the later anonymous signature).
  Its values are cleared before the column is dropped: PostgreSQL's DROP COLUMN leaves the bytes in the heap.
- token_issuances.burned: the account's right to sign this petition anonymously was used by a signature with
  its name (it stays used after a withdrawal). It names no token.
- issuing_keys.spent_by_name: how many issued tokens were spent with a name, so anyone can check
  anonymous signatures <= tokens_issued - spent_by_name.

Revision ID: c18d2a7e9b10
Revises: 7d2c9e4b1a60
Create Date: 2026-12-06 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c18d2a7e9b10"
down_revision: str | None = "7d2c9e4b1a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("issuing_keys") as batch_op:
        batch_op.add_column(sa.Column("spent_by_name", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("token_issuances") as batch_op:
        batch_op.add_column(sa.Column("burned", sa.Boolean(), server_default=sa.false(), nullable=False))
    # A named signature that carries a nullifier spent its account's token.
    op.execute(
        sa.text(
            "UPDATE token_issuances SET burned = :yes WHERE EXISTS (SELECT 1 FROM signatures "
            "WHERE signatures.account_id = token_issuances.account_id "
            "AND signatures.petition_id = token_issuances.petition_id AND signatures.token_nullifier IS NOT NULL)"
        ).bindparams(yes=True)
    )
    op.execute(
        sa.text(
            "UPDATE issuing_keys SET spent_by_name = (SELECT count(*) FROM signatures "
            "WHERE signatures.petition_id = issuing_keys.petition_id AND signatures.token_nullifier IS NOT NULL)"
        )
    )
    op.execute(sa.text("UPDATE signatures SET token_nullifier = NULL WHERE token_nullifier IS NOT NULL"))
    with op.batch_alter_table("signatures") as batch_op:
        batch_op.drop_column("token_nullifier")


def downgrade() -> None:
    """The nullifiers cannot come back (nothing links a spent token to an account any more): named signatures
    come back without one, so withdrawing them frees nothing, which is the safe side."""
    with op.batch_alter_table("signatures") as batch_op:
        batch_op.add_column(sa.Column("token_nullifier", sa.String(length=64), nullable=True))
    with op.batch_alter_table("token_issuances") as batch_op:
        batch_op.drop_column("burned")
    with op.batch_alter_table("issuing_keys") as batch_op:
        batch_op.drop_column("spent_by_name")
