"""petitions and signatures

Revision ID: c4908c0a4c73
Revises: f5ca46e5ad23
Create Date: 2026-11-24 06:55:53.471933
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4908c0a4c73"
down_revision: str | None = "f5ca46e5ad23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("slug", name=op.f("uq_categories_slug")),
    )
    op.create_table(
        "rejection_reasons",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_rejection_reasons")),
    )
    op.create_table(
        "petitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("ask", sa.Text(), nullable=False),
        sa.Column("background", sa.Text(), nullable=False),
        sa.Column("decision_maker", sa.String(length=120), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("allow_anonymous", sa.Boolean(), nullable=False),
        sa.Column("collect_attributes", sa.Boolean(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sponsor_nonce", sa.String(length=32), nullable=False),
        sa.Column("sponsor_count", sa.Integer(), nullable=False),
        sa.Column("signature_count", sa.Integer(), nullable=False),
        sa.Column("withdrawal_count", sa.Integer(), nullable=False),
        sa.Column("response_threshold", sa.Integer(), nullable=True),
        sa.Column("escalation_threshold", sa.Integer(), nullable=True),
        sa.Column("response_threshold_reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_threshold_reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sponsors_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("moderation_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejection_code", sa.String(length=40), nullable=True),
        sa.Column("rejection_note", sa.String(length=1000), nullable=True),
        sa.Column("hidden_reason", sa.String(length=1000), nullable=True),
        sa.Column("moderation_lock_by_id", sa.Integer(), nullable=True),
        sa.Column("moderation_lock_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("signature_count >= 0", name=op.f("ck_petitions_signature_count_not_negative")),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"], name=op.f("fk_petitions_category_id_categories")),
        sa.ForeignKeyConstraint(["creator_id"], ["users.id"], name=op.f("fk_petitions_creator_id_users")),
        sa.ForeignKeyConstraint(
            ["moderation_lock_by_id"],
            ["users.id"],
            name=op.f("fk_petitions_moderation_lock_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rejection_code"], ["rejection_reasons.code"], name=op.f("fk_petitions_rejection_code_rejection_reasons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petitions")),
    )
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petitions_category_id"), ["category_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_petitions_creator_id"), ["creator_id"], unique=False)
        batch_op.create_index("ix_petitions_state_deadline", ["state", "deadline"], unique=False)
        batch_op.create_index("ix_petitions_state_opened_at", ["state", "opened_at"], unique=False)
        batch_op.create_index("ix_petitions_state_signature_count", ["state", "signature_count"], unique=False)

    op.create_table(
        "petition_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_petition_events_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_petition_events_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_events")),
    )
    with op.batch_alter_table("petition_events", schema=None) as batch_op:
        batch_op.create_index("ix_petition_events_petition_at", ["petition_id", "at"], unique=False)

    op.create_table(
        "petition_follows",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_follows_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_petition_follows_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "user_id", name=op.f("pk_petition_follows")),
    )
    with op.batch_alter_table("petition_follows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petition_follows_user_id"), ["user_id"], unique=False)

    op.create_table(
        "petition_organizers",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("is_creator", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_organizers_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_petition_organizers_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "user_id", name=op.f("pk_petition_organizers")),
    )
    with op.batch_alter_table("petition_organizers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_petition_organizers_user_id"), ["user_id"], unique=False)

    op.create_table(
        "petition_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_petition_updates_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_updates_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_updates")),
    )
    with op.batch_alter_table("petition_updates", schema=None) as batch_op:
        batch_op.create_index("ix_petition_updates_petition_created", ["petition_id", "created_at"], unique=False)

    op.create_table(
        "petition_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("ask", sa.Text(), nullable=False),
        sa.Column("background", sa.Text(), nullable=False),
        sa.Column("decision_maker", sa.String(length=120), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_petition_versions_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_petition_versions_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_petition_versions")),
        sa.UniqueConstraint("petition_id", "number", name="uq_petition_versions_petition_number"),
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("public_name", sa.String(length=80), nullable=True),
        sa.Column("sealed_name", sa.LargeBinary(), nullable=True),
        sa.Column("notify_updates", sa.Boolean(), nullable=False),
        sa.Column("signed_hour", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["users.id"], name=op.f("fk_signatures_account_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_signatures_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
        sa.UniqueConstraint("petition_id", "account_id", name="uq_signatures_petition_account"),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index("ix_signatures_account_id", ["account_id"], unique=False)
        batch_op.create_index("ix_signatures_petition_signed_hour", ["petition_id", "signed_hour"], unique=False)

    op.create_table(
        "sponsorships",
        sa.Column("petition_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"], ["petitions.id"], name=op.f("fk_sponsorships_petition_id_petitions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sponsorships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("petition_id", "user_id", name=op.f("pk_sponsorships")),
    )

    # The managed lists start with sensible entries; admins adjust categories from the admin pages.
    categories = sa.table(
        "categories", sa.column("slug", sa.String), sa.column("name", sa.String), sa.column("active", sa.Boolean)
    )
    op.bulk_insert(
        categories,
        [
            {"slug": slug, "name": name, "active": True}
            for slug, name in [
                ("workplace", "Workplace and facilities"),
                ("pay", "Pay and benefits"),
                ("privacy", "Privacy and monitoring"),
                ("policy", "Policies and programs"),
                ("wellbeing", "Health and wellbeing"),
                ("other", "Something else"),
            ]
        ],
    )
    reasons = sa.table(
        "rejection_reasons",
        sa.column("code", sa.String),
        sa.column("title", sa.String),
        sa.column("description", sa.String),
        sa.column("public", sa.Boolean),
    )
    op.bulk_insert(
        reasons,
        [
            {"code": code, "title": title, "description": description, "public": public}
            for code, title, description, public in [
                (
                    "duplicate",
                    "There is already a petition about this",
                    "Sign and share the open petition that asks for the same thing.",
                    True,
                ),
                (
                    "unclear",
                    "It is not clear what the petition asks for",
                    "A petition needs a clear request that leadership can answer.",
                    True,
                ),
                (
                    "not_actionable",
                    "It asks for something the organization cannot do",
                    "The request is outside what the organization decides.",
                    True,
                ),
                (
                    "personal_case",
                    "It is about an individual case",
                    "Individual cases are handled through HR and grievance procedures, not petitions.",
                    True,
                ),
                (
                    "names_colleagues",
                    "It names or targets individual colleagues",
                    "Petitions may criticise decisions and roles, not single people.",
                    False,
                ),
                (
                    "confidential",
                    "It contains confidential information",
                    "The text included information that may not be shared here.",
                    False,
                ),
                (
                    "offensive",
                    "It is offensive, abusive or discriminatory",
                    "The text breaks the organization's conduct rules.",
                    False,
                ),
            ]
        ],
    )

    # Full-text search (app/petitions/search.py queries these).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE petitions_fts USING fts5(title, ask, background, content='petitions', "
            "content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER petitions_fts_insert AFTER INSERT ON petitions BEGIN "
            "INSERT INTO petitions_fts(rowid, title, ask, background) "
            "VALUES (new.id, new.title, new.ask, new.background); END"
        )
        op.execute(
            "CREATE TRIGGER petitions_fts_delete AFTER DELETE ON petitions BEGIN "
            "INSERT INTO petitions_fts(petitions_fts, rowid, title, ask, background) "
            "VALUES ('delete', old.id, old.title, old.ask, old.background); END"
        )
        op.execute(
            "CREATE TRIGGER petitions_fts_update AFTER UPDATE OF title, ask, background ON petitions BEGIN "
            "INSERT INTO petitions_fts(petitions_fts, rowid, title, ask, background) "
            "VALUES ('delete', old.id, old.title, old.ask, old.background); "
            "INSERT INTO petitions_fts(rowid, title, ask, background) "
            "VALUES (new.id, new.title, new.ask, new.background); END"
        )
    else:
        op.execute(
            "CREATE INDEX ix_petitions_search ON petitions USING gin ((to_tsvector('english', "
            "coalesce(title, '') || ' ' || coalesce(ask, '') || ' ' || coalesce(background, ''))))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("petitions_fts_update", "petitions_fts_delete", "petitions_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS petitions_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_petitions_search")
    op.drop_table("sponsorships")
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_signatures_petition_signed_hour")
        batch_op.drop_index("ix_signatures_account_id")

    op.drop_table("signatures")
    op.drop_table("petition_versions")
    with op.batch_alter_table("petition_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_petition_updates_petition_created")

    op.drop_table("petition_updates")
    with op.batch_alter_table("petition_organizers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_organizers_user_id"))

    op.drop_table("petition_organizers")
    with op.batch_alter_table("petition_follows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petition_follows_user_id"))

    op.drop_table("petition_follows")
    with op.batch_alter_table("petition_events", schema=None) as batch_op:
        batch_op.drop_index("ix_petition_events_petition_at")

    op.drop_table("petition_events")
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.drop_index("ix_petitions_state_signature_count")
        batch_op.drop_index("ix_petitions_state_opened_at")
        batch_op.drop_index("ix_petitions_state_deadline")
        batch_op.drop_index(batch_op.f("ix_petitions_creator_id"))
        batch_op.drop_index(batch_op.f("ix_petitions_category_id"))

    op.drop_table("petitions")
    op.drop_table("rejection_reasons")
    op.drop_table("categories")
