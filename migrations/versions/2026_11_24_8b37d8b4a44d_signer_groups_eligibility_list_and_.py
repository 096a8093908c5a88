"""signer groups, eligibility list and invalidations

Revision ID: 8b37d8b4a44d
Revises: c4908c0a4c73
Create Date: 2026-11-24 07:05:22.910511
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8b37d8b4a44d"
down_revision: str | None = "c4908c0a4c73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "eligible_addresses",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_eligible_addresses")),
    )
    op.create_table(
        "signer_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signer_groups")),
        sa.UniqueConstraint("kind", "name", name="uq_signer_groups_kind_name"),
    )
    op.create_table(
        "invalidations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("moderator_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["moderator_id"], ["users.id"], name=op.f("fk_invalidations_moderator_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_invalidations_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invalidations")),
    )
    with op.batch_alter_table("invalidations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invalidations_petition_id"), ["petition_id"], unique=False)

    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("location_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invalidation_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_signatures_invalidation_id"), ["invalidation_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_signatures_location_id_signer_groups"), "signer_groups", ["location_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_signatures_department_id_signer_groups"), "signer_groups", ["department_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_signatures_invalidation_id_invalidations"), "invalidations", ["invalidation_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_signatures_invalidation_id_invalidations"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_signatures_department_id_signer_groups"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_signatures_location_id_signer_groups"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_signatures_invalidation_id"))
        batch_op.drop_column("invalidation_id")
        batch_op.drop_column("location_id")
        batch_op.drop_column("department_id")

    with op.batch_alter_table("invalidations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invalidations_petition_id"))

    op.drop_table("invalidations")
    op.drop_table("signer_groups")
    op.drop_table("eligible_addresses")
