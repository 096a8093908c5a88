"""Ballots (issue #25): questions put to the members or to a petition's signers, answered anonymously.

- ballots, ballot_options: the question, its options, its times and its blind-signing key (sealed, destroyed at
  close), with the public counts of credentials issued and answers counted.
- ballot_issuances: account A was issued ballot B's credential, on that day (the blind reply kept).
- ballot_exchanges: a signer credential (by a hash of its message) was exchanged for the ballot's credential; no
  account, no time.
- ballot_answers: counted answers, random ids, the batch's hour only; superseded when a later revision counts.
- ballot_leaves, ballot_checkpoints: each ballot's own Merkle log and its signed checkpoints.

Revision ID: 1a9aa561bb95
Revises: a7c4e2b9d318
Create Date: 2026-12-07 02:10:47.275630
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1a9aa561bb95"
down_revision: str | None = "a7c4e2b9d318"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ballots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=True),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("question", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("max_choices", sa.Integer(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("results_live", sa.Boolean(), nullable=False),
        sa.Column("min_answers", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_early", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("spki", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=True),
        sa.Column("credentials_issued", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answers_counted", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_ballots_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_ballots_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["petition_responses.id"],
            name=op.f("fk_ballots_response_id_petition_responses"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ballots")),
        sa.UniqueConstraint("key_id", name=op.f("uq_ballots_key_id")),
    )
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.create_index("ix_ballots_closes_at", ["closes_at"], unique=False)
        batch_op.create_index("ix_ballots_petition_id", ["petition_id"], unique=False)

    op.create_table(
        "ballot_answers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("credential", sa.String(length=64), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("choice", sa.Text(), nullable=False),
        sa.Column("counted_hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_answers_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ballot_answers")),
        sa.UniqueConstraint("ballot_id", "credential", "revision", name="uq_ballot_answers_ballot_credential_revision"),
    )
    op.create_table(
        "ballot_checkpoints",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_checkpoints_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ballot_id", "size", name=op.f("pk_ballot_checkpoints")),
    )
    op.create_table(
        "ballot_exchanges",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("signer_tag", sa.String(length=64), nullable=False),
        sa.Column("blind_signature", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_exchanges_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ballot_id", "signer_tag", name=op.f("pk_ballot_exchanges")),
    )
    op.create_table(
        "ballot_issuances",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("blind_signature", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_ballot_issuances_account_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_issuances_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "ballot_id", name=op.f("pk_ballot_issuances")),
    )
    op.create_table(
        "ballot_leaves",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_leaves_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ballot_id", "index", name=op.f("pk_ballot_leaves")),
    )
    op.create_table(
        "ballot_options",
        sa.Column("ballot_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["ballot_id"], ["ballots.id"], name=op.f("fk_ballot_options_ballot_id_ballots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ballot_id", "position", name=op.f("pk_ballot_options")),
    )


def downgrade() -> None:
    op.drop_table("ballot_options")
    op.drop_table("ballot_leaves")
    op.drop_table("ballot_issuances")
    op.drop_table("ballot_exchanges")
    op.drop_table("ballot_checkpoints")
    op.drop_table("ballot_answers")
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.drop_index("ix_ballots_petition_id")
        batch_op.drop_index("ix_ballots_closes_at")

    op.drop_table("ballots")
