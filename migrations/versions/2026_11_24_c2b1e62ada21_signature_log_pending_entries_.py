"""signature log: pending entries, checkpoints, cosignatures, each signature's leaf

Revision ID: c2b1e62ada21
Revises: 3f097fe97b32
Create Date: 2026-11-24 13:26:00.921567
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c2b1e62ada21"
down_revision: str | None = "3f097fe97b32"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_checkpoints",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_log_checkpoints_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "size", name=op.f("pk_log_checkpoints")),
    )
    op.create_table(
        "log_cosignatures",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=120), nullable=False),
        sa.Column("line", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_log_cosignatures_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("petition_id", "size", "witness", name=op.f("pk_log_cosignatures")),
    )
    op.create_table(
        "log_pending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_log_pending_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_pending")),
    )
    with op.batch_alter_table("log_pending", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_log_pending_petition_id"), ["petition_id"], unique=False)

    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_index", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_signatures_unlogged",
            ["petition_id"],
            unique=False,
            postgresql_where=sa.text("log_index IS NULL"),
            sqlite_where=sa.text("log_index IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_signatures_unlogged",
            postgresql_where=sa.text("log_index IS NULL"),
            sqlite_where=sa.text("log_index IS NULL"),
        )
        batch_op.drop_column("log_index")

    with op.batch_alter_table("log_pending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_pending_petition_id"))

    op.drop_table("log_pending")
    op.drop_table("log_cosignatures")
    op.drop_table("log_checkpoints")
