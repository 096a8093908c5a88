"""signature log: leaves, complete subtrees and heads of each petition's Merkle tree

Revision ID: 3f097fe97b32
Revises: e6135946ddac
Create Date: 2026-11-24 13:21:08.163536
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f097fe97b32"
down_revision: str | None = "e6135946ddac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_heads",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_log_heads_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", name=op.f("pk_log_heads")),
    )
    op.create_table(
        "log_leaves",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_log_leaves_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "index", name=op.f("pk_log_leaves")),
    )
    op.create_table(
        "log_nodes",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_log_nodes_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "level", "index", name=op.f("pk_log_nodes")),
    )


def downgrade() -> None:
    op.drop_table("log_nodes")
    op.drop_table("log_leaves")
    op.drop_table("log_heads")
