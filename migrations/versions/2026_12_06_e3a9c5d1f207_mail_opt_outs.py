"""Every mail a person can turn off carries its unsubscribe link; what they turned off is kept to the day.

- outbox_messages.unsubscribe_sealed: the mail's own unsubscribe link, sealed like its body, for the
  List-Unsubscribe header (RFC 8058); NULL for mail nobody can turn off (sign-in links, resets, verification).
- mail_opt_outs: one kind of mail about one petition that a person turned off, with the day only.

Revision ID: e3a9c5d1f207
Revises: d20a7c3e5f11
Create Date: 2026-12-06 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3a9c5d1f207"
down_revision: str | None = "d20a7c3e5f11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch_op:
        batch_op.add_column(sa.Column("unsubscribe_sealed", sa.LargeBinary(), nullable=True))
    op.create_table(
        "mail_opt_outs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_mail_opt_outs_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mail_opt_outs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "petition_id", "kind", name=op.f("pk_mail_opt_outs")),
    )
    with op.batch_alter_table("mail_opt_outs") as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_opt_outs_petition_id"), ["petition_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_opt_outs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_opt_outs_petition_id"))
    op.drop_table("mail_opt_outs")
    with op.batch_alter_table("outbox_messages") as batch_op:
        batch_op.drop_column("unsubscribe_sealed")
