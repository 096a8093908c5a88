"""Signer credentials (issue #25): proof of having signed a petition, without saying which signature.

- signer_keys: each petition's blind-signing key for them (sealed, destroyed at close), with the public count of
  credentials issued.
- signer_issuances: account A, which signed petition P with its name, was issued its signer credential, on that
  day (the blind reply kept for its other devices).
- signer_replies: the blind reply for an anonymous signature's signer credential, under its token's nullifier; no
  account, no time.

Revision ID: c86a2885bb38
Revises: 1a9aa561bb95
Create Date: 2026-12-07 02:12:59.538267
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c86a2885bb38"
down_revision: str | None = "1a9aa561bb95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signer_issuances",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("blind_signature", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_signer_issuances_account_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_signer_issuances_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "petition_id", name=op.f("pk_signer_issuances")),
    )
    op.create_table(
        "signer_keys",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("spki", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=True),
        sa.Column("tokens_issued", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_signer_keys_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", name=op.f("pk_signer_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_signer_keys_key_id")),
    )
    op.create_table(
        "signer_replies",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("nullifier", sa.String(length=64), nullable=False),
        sa.Column("blind_signature", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_signer_replies_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "nullifier", name=op.f("pk_signer_replies")),
    )


def downgrade() -> None:
    op.drop_table("signer_replies")
    op.drop_table("signer_keys")
    op.drop_table("signer_issuances")
