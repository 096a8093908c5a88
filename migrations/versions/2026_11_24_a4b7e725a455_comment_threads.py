"""comment threads: comments, revisions, endorsements, flags; discussion columns on petitions

Revision ID: a4b7e725a455
Revises: 4e7af3039932
Create Date: 2026-11-24 12:17:30.273552
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4b7e725a455"
down_revision: str | None = "4e7af3039932"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("quoted_id", sa.Integer(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("pseudonym", sa.String(length=32), nullable=True),
        sa.Column("author_proof", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("hidden_reason", sa.String(length=500), nullable=True),
        sa.Column("rank", sa.Float(), nullable=False),
        sa.Column("endorsement_count", sa.Integer(), nullable=False),
        sa.Column("reply_count", sa.Integer(), nullable=False),
        sa.Column("flags_since_review", sa.Integer(), nullable=False),
        sa.Column("review", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("author_id IS NULL OR pseudonym IS NULL", name=op.f("ck_comments_named_or_pseudonymous")),
        sa.CheckConstraint("depth BETWEEN 1 AND 4", name=op.f("ck_comments_depth_in_range")),
        sa.CheckConstraint("endorsement_count >= 0", name=op.f("ck_comments_endorsement_count_not_negative")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_comments_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["comments.id"], name=op.f("fk_comments_parent_id_comments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_comments_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["quoted_id"], ["comments.id"], name=op.f("fk_comments_quoted_id_comments"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_author_id"), ["author_id"], unique=False)
        batch_op.create_index("ix_comments_parent_id", ["parent_id", "id"], unique=False)
        batch_op.create_index("ix_comments_petition_id", ["petition_id", "id"], unique=False)
        top_level = sa.text("parent_id IS NULL")
        batch_op.create_index(
            "ix_comments_top_level_endorsements",
            ["petition_id", "endorsement_count", "id"],
            unique=False,
            postgresql_where=top_level,
            sqlite_where=top_level,
        )
        batch_op.create_index(
            "ix_comments_top_level_id",
            ["petition_id", "id"],
            unique=False,
            postgresql_where=top_level,
            sqlite_where=top_level,
        )
        batch_op.create_index(
            "ix_comments_top_level_rank",
            ["petition_id", "rank", "id"],
            unique=False,
            postgresql_where=top_level,
            sqlite_where=top_level,
        )
        batch_op.create_index("ix_comments_review_flags", ["review", "flags_since_review"], unique=False)

    op.create_table(
        "comment_endorsements",
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_comment_endorsements_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_comment_endorsements_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("comment_id", "user_id", name=op.f("pk_comment_endorsements")),
    )
    with op.batch_alter_table("comment_endorsements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_endorsements_user_id"), ["user_id"], unique=False)

    op.create_table(
        "comment_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_comment_flags_comment_id_comments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_comment_flags_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment_flags")),
        sa.UniqueConstraint("comment_id", "user_id", name="uq_comment_flags_comment_user"),
    )
    with op.batch_alter_table("comment_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_flags_comment_id"), ["comment_id"], unique=False)

    op.create_table(
        "comment_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_comment_revisions_comment_id_comments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment_revisions")),
    )
    with op.batch_alter_table("comment_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_revisions_comment_id"), ["comment_id"], unique=False)

    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("comment_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("comments_locked_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("comments_locked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("comment_digest_through", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("comment_digest_sent_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_comment_replies", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("notify_comment_replies")

    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.drop_column("comment_digest_sent_at")
        batch_op.drop_column("comment_digest_through")
        batch_op.drop_column("comments_locked_at")
        batch_op.drop_column("comments_locked_reason")
        batch_op.drop_column("comment_count")

    with op.batch_alter_table("comment_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comment_revisions_comment_id"))

    op.drop_table("comment_revisions")
    with op.batch_alter_table("comment_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comment_flags_comment_id"))

    op.drop_table("comment_flags")
    with op.batch_alter_table("comment_endorsements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comment_endorsements_user_id"))

    op.drop_table("comment_endorsements")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("ix_comments_review_flags")
        batch_op.drop_index("ix_comments_top_level_rank")
        batch_op.drop_index("ix_comments_top_level_id")
        batch_op.drop_index("ix_comments_top_level_endorsements")
        batch_op.drop_index("ix_comments_petition_id")
        batch_op.drop_index("ix_comments_parent_id")
        batch_op.drop_index(batch_op.f("ix_comments_author_id"))

    op.drop_table("comments")
