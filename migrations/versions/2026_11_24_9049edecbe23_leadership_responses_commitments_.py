"""leadership responses, commitments, judgements and notifications

Revision ID: 9049edecbe23
Revises: 8b37d8b4a44d
Create Date: 2026-11-24 07:46:16.088472
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9049edecbe23"
down_revision: str | None = "8b37d8b4a44d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("event_key", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_deliveries_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_key", "user_id", name=op.f("pk_deliveries")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=80), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_notifications_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_done_at", ["done_at"], unique=False)

    op.create_table(
        "petition_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("responder_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_responses_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["responder_id"], ["users.id"], name=op.f("fk_petition_responses_responder_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_responses")),
    )
    with op.batch_alter_table("petition_responses", schema=None) as batch_op:
        batch_op.create_index("ix_petition_responses_petition_created", ["petition_id", "created_at"], unique=False)

    op.create_table(
        "commitments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_commitments_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["petition_responses.id"],
            name=op.f("fk_commitments_response_id_petition_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitments")),
    )
    with op.batch_alter_table("commitments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commitments_petition_id"), ["petition_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_commitments_response_id"), ["response_id"], unique=False)
        batch_op.create_index("ix_commitments_status_due_on", ["status", "due_on"], unique=False)

    op.create_table(
        "response_judgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("follow_up_requested", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_response_judgements_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_response_judgements_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["petition_responses.id"],
            name=op.f("fk_response_judgements_response_id_petition_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_judgements")),
        sa.UniqueConstraint("response_id", name="uq_response_judgements_response_id"),
    )
    with op.batch_alter_table("response_judgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_response_judgements_petition_id"), ["petition_id"], unique=False)

    op.create_table(
        "commitment_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("commitment_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_commitment_updates_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["commitments.id"],
            name=op.f("fk_commitment_updates_commitment_id_commitments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commitment_updates")),
    )
    with op.batch_alter_table("commitment_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_commitment_updates_commitment_id"), ["commitment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("commitment_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commitment_updates_commitment_id"))

    op.drop_table("commitment_updates")
    with op.batch_alter_table("response_judgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_response_judgements_petition_id"))

    op.drop_table("response_judgements")
    with op.batch_alter_table("commitments", schema=None) as batch_op:
        batch_op.drop_index("ix_commitments_status_due_on")
        batch_op.drop_index(batch_op.f("ix_commitments_response_id"))
        batch_op.drop_index(batch_op.f("ix_commitments_petition_id"))

    op.drop_table("commitments")
    with op.batch_alter_table("petition_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_petition_responses_petition_created")

    op.drop_table("petition_responses")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_done_at")

    op.drop_table("notifications")
    op.drop_table("deliveries")
