"""Anonymous comments carried by the wallet's discussion credential, not the session.

- discussion_keys, discussion_issuances: each open anonymous-enabled petition's second blind-signing key, and who
  was issued its credential (account, petition, day), as for signing tokens. Petitions already open get their key
  from the worker's next round (making an RSA key needs the deployment's key-encryption key, which a migration
  does not hold).
- comments.digested replaces petitions.comment_digest_through: the organizers' digest remembered the id of the last
  comment it listed, which dated anonymous comments against the named ones' sequence.
- Time-ordered indexes: anonymous comments now take random ids, so "newest" and replies order by (time, id).
- Existing anonymous comments: their pseudonyms were HMAC(deployment secret, petition:account), which whoever holds
  the secret can recompute for every account. Each is replaced by a random one (the same for one old pseudonym
  within a petition, so a thread still reads as it did), and the session-keyed author proofs are cleared: they
  tie a comment to a browser session, and nothing checks them any more.

Revision ID: c18e3b8f0a21
Revises: c18d2a7e9b10
Create Date: 2026-12-06 15:20:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c18e3b8f0a21"
down_revision: str | None = "c18d2a7e9b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOP_LEVEL = sa.text("parent_id IS NULL")
UNDIGESTED = sa.text("NOT digested")


def upgrade() -> None:
    op.create_table(
        "discussion_keys",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("spki", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=True),
        sa.Column("tokens_issued", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_discussion_keys_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", name=op.f("pk_discussion_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_discussion_keys_key_id")),
    )
    op.create_table(
        "discussion_issuances",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("blind_signature", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_discussion_issuances_account_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_discussion_issuances_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "petition_id", name=op.f("pk_discussion_issuances")),
    )
    with op.batch_alter_table("comments") as batch_op:
        batch_op.add_column(sa.Column("digested", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        sa.text(
            "UPDATE comments SET digested = :yes WHERE id <= (SELECT comment_digest_through FROM petitions "
            "WHERE petitions.id = comments.petition_id)"
        ).bindparams(yes=True)
    )
    # Not in batch mode: on SQLite that rebuilds the table and drops its full-text search triggers. SQLite (3.35+)
    # drops a column in place.
    op.drop_column("petitions", "comment_digest_through")
    with op.batch_alter_table("comments") as batch_op:
        batch_op.drop_index("ix_comments_top_level_id")
        batch_op.drop_index("ix_comments_parent_id")
        batch_op.drop_index("ix_comments_petition_id")
        batch_op.create_index(
            "ix_comments_top_level_created",
            ["petition_id", "created_at", "id"],
            unique=False,
            postgresql_where=TOP_LEVEL,
            sqlite_where=TOP_LEVEL,
        )
        batch_op.create_index("ix_comments_parent_created", ["parent_id", "created_at", "id"], unique=False)
        batch_op.create_index("ix_comments_petition_created", ["petition_id", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_comments_undigested",
            ["petition_id"],
            unique=False,
            postgresql_where=UNDIGESTED,
            sqlite_where=UNDIGESTED,
        )
    _new_pseudonyms()


def _new_pseudonyms() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT DISTINCT petition_id, pseudonym FROM comments WHERE pseudonym IS NOT NULL")
    ).all()
    for petition_id, old in rows:
        connection.execute(
            sa.text(
                "UPDATE comments SET pseudonym = :new, author_proof = NULL "
                "WHERE petition_id = :petition AND pseudonym = :old"
            ),
            {"new": "Colleague " + secrets.token_hex(3), "petition": petition_id, "old": old},
        )


def downgrade() -> None:
    """The random pseudonyms stay (the old ones were the leak); anonymous comments lose nothing else."""
    with op.batch_alter_table("comments") as batch_op:
        batch_op.drop_index("ix_comments_undigested")
        batch_op.drop_index("ix_comments_petition_created")
        batch_op.drop_index("ix_comments_parent_created")
        batch_op.drop_index("ix_comments_top_level_created")
        batch_op.create_index("ix_comments_petition_id", ["petition_id", "id"], unique=False)
        batch_op.create_index("ix_comments_parent_id", ["parent_id", "id"], unique=False)
        batch_op.create_index(
            "ix_comments_top_level_id",
            ["petition_id", "id"],
            unique=False,
            postgresql_where=TOP_LEVEL,
            sqlite_where=TOP_LEVEL,
        )
    op.add_column("petitions", sa.Column("comment_digest_through", sa.Integer(), server_default="0", nullable=False))
    # Named comments only: a digest position among random anonymous ids would mean nothing.
    op.execute(
        sa.text(
            "UPDATE petitions SET comment_digest_through = COALESCE((SELECT max(id) FROM comments WHERE "
            "comments.petition_id = petitions.id AND comments.digested AND comments.id < :floor), 0)"
        ).bindparams(floor=2**30)
    )
    with op.batch_alter_table("comments") as batch_op:
        batch_op.drop_column("digested")
    op.drop_table("discussion_issuances")
    op.drop_table("discussion_keys")
