"""Polls put to departments or locations (issue #25).

- ballot_groups: the departments and locations a poll of audience `groups` is put to.
- member_groups: a member's own department and location, as given on their account page (one of each at most),
  from the managed lists signers choose from; no time. Who is due such a poll's credential.

Revision ID: 93550bbaf9f8
Revises: c86a2885bb38
Create Date: 2026-12-07 05:28:41.194234
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "93550bbaf9f8"
down_revision: str | None = "c86a2885bb38"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_groups",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.Enum("department", "location", name="groupkind", native_enum=False, length=16), nullable=False
        ),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_member_groups_account_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["signer_groups.id"], name=op.f("fk_member_groups_group_id_signer_groups")
        ),
        sa.PrimaryKeyConstraint("account_id", "kind", name=op.f("pk_member_groups")),
    )
    with op.batch_alter_table("member_groups", schema=None) as batch_op:
        batch_op.create_index("ix_member_groups_group_id", ["group_id"], unique=False)

    op.create_table(
        "ballot_groups",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_groups_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["signer_groups.id"], name=op.f("fk_ballot_groups_group_id_signer_groups")
        ),
        sa.PrimaryKeyConstraint("ballot_id", "group_id", name=op.f("pk_ballot_groups")),
    )


def downgrade() -> None:
    op.drop_table("ballot_groups")
    with op.batch_alter_table("member_groups", schema=None) as batch_op:
        batch_op.drop_index("ix_member_groups_group_id")

    op.drop_table("member_groups")
