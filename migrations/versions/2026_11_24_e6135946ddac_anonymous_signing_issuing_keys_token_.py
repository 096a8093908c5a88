"""anonymous signing: issuing keys, token issuances, spent tokens

Revision ID: e6135946ddac
Revises: a4b7e725a455
Create Date: 2026-11-24 12:42:50.567950
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e6135946ddac"
down_revision: str | None = "a4b7e725a455"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issuing_keys",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("spki", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=True),
        sa.Column("tokens_issued", sa.Integer(), nullable=False),
        sa.Column("anonymous_signatures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_issuing_keys_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", name=op.f("pk_issuing_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_issuing_keys_key_id")),
    )
    op.create_table(
        "spent_tokens",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("nullifier", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_spent_tokens_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "nullifier", name=op.f("pk_spent_tokens")),
    )
    op.create_table(
        "token_issuances",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("blind_signature", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_token_issuances_account_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_token_issuances_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "petition_id", name=op.f("pk_token_issuances")),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_message", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("token_signature", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("token_nullifier", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_column("token_nullifier")
        batch_op.drop_column("token_signature")
        batch_op.drop_column("token_message")

    op.drop_table("token_issuances")
    op.drop_table("spent_tokens")
    op.drop_table("issuing_keys")
