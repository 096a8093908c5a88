"""Seal addresses, names and mail at rest (AES-GCM), with blind indexes for look-ups.

Also the rule of a voiding (the addresses a moderator listed).

Existing rows are sealed with the keys of the deployment running the migration (UNDERSIGNED_SECRET_KEY and
UNDERSIGNED_PII_KEYS), so run it with the same settings as the server.

Revision ID: 7d2c9e4b1a60
Revises: 444e94f45a3b
Create Date: 2026-11-24 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d2c9e4b1a60"
down_revision: str | None = "444e94f45a3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> [(plain column, sealed column, associated data, nullable)]
SEALED = {
    "users": [
        ("email", "email_sealed", "users.email", False),
        ("display_name", "display_name_sealed", "users.display_name", False),
        ("notification_email", "notification_email_sealed", "users.notification_email", True),
    ],
    "one_time_codes": [
        ("sent_to", "sent_to_sealed", "one_time_codes.sent_to", False),
        ("pending_display_name", "pending_display_name_sealed", "one_time_codes.pending_display_name", True),
    ],
    "outbox_messages": [
        ("to_address", "to_address_sealed", "outbox_messages.to_address", False),
        ("subject", "subject_sealed", "outbox_messages.subject", False),
        ("body_text", "body_sealed", "outbox_messages.body_text", False),
    ],
    "invalidations": [("rule", "rule_sealed", "invalidations.rule", False)],
}
BATCH = 500


def _install_keys() -> None:
    from app.core import crypto
    from app.core.security import Keyring
    from app.core.settings import Settings

    settings = Settings()
    crypto.install(
        Keyring(settings.secret_key.get_secret_value()),
        settings.pii_keys.get_secret_value() if settings.pii_keys else None,
    )


def _batches(connection, table: str, columns: str):  # type: ignore[no-untyped-def]
    """A table's rows in batches by id, so a large outbox is never held in memory at once."""
    last = 0
    while True:
        rows = connection.execute(
            sa.text(f"SELECT id, {columns} FROM {table} WHERE id > :last ORDER BY id LIMIT {BATCH}"), {"last": last}
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _rewrite(connection, *, read: int, convert) -> None:  # type: ignore[no-untyped-def]
    """Every row of every table in SEALED, reading its plain (read=0) or sealed (read=1) columns and writing
    what `convert(table, row)` returns; the keys are installed once there is a row to convert."""
    installed = False
    for table, columns in SEALED.items():
        for rows in _batches(connection, table, ", ".join(column[read] for column in columns)):
            if not installed:
                _install_keys()
                installed = True
            for row in rows:
                values = convert(table, row)
                assignments = ", ".join(f"{name} = :{name}" for name in values)
                connection.execute(
                    sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"), {**values, "id": row[0]}
                )


def upgrade() -> None:
    from app.core import crypto

    connection = op.get_bind()
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("email_index", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("email_domain_index", sa.String(length=64), nullable=True))
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch_op:
            for _plain, sealed, _context, _nullable in columns:
                batch_op.add_column(sa.Column(sealed, sa.LargeBinary(), nullable=True))

    def sealed_row(table: str, row) -> dict[str, object]:  # type: ignore[no-untyped-def]
        values = {
            sealed: None if value is None else crypto.seal(value, context=context)
            for (_plain, sealed, context, _nullable), value in zip(SEALED[table], row[1:], strict=True)
        }
        if table == "users":
            address = row[1].lower()
            values["email_index"] = crypto.blind_index("email", address)
            values["email_domain_index"] = crypto.blind_index("email-domain", address.rpartition("@")[2])
        return values

    _rewrite(connection, read=0, convert=sealed_row)

    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint("uq_users_email", type_="unique")
        batch_op.alter_column("email_index", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("email_domain_index", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_users_email_index"), ["email_index"])
        batch_op.create_index(batch_op.f("ix_users_email_domain_index"), ["email_domain_index"], unique=False)
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch_op:
            for plain, sealed, _context, nullable in columns:
                batch_op.drop_column(plain)
                if not nullable:
                    batch_op.alter_column(sealed, existing_type=sa.LargeBinary(), nullable=False)


PLAIN_TYPES = {
    "email": sa.String(254),
    "display_name": sa.String(80),
    "notification_email": sa.String(254),
    "sent_to": sa.String(254),
    "pending_display_name": sa.String(80),
    "to_address": sa.String(254),
    "subject": sa.String(200),
    "body_text": sa.Text(),
    "rule": sa.String(300),
}


def downgrade() -> None:
    """Unseal back into plain columns (with the same keys): for rolling back a failed deployment only."""
    from app.core import crypto

    connection = op.get_bind()
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch_op:
            for plain, _sealed, _context, _nullable in columns:
                batch_op.add_column(sa.Column(plain, PLAIN_TYPES[plain], nullable=True))
    _rewrite(
        connection,
        read=1,
        convert=lambda table, row: {
            plain: None if value is None else crypto.open_sealed(value, context=context)
            for (plain, _sealed, context, _nullable), value in zip(SEALED[table], row[1:], strict=True)
        },
    )
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch_op:
            for plain, sealed, _context, nullable in columns:
                batch_op.drop_column(sealed)
                if not nullable:
                    batch_op.alter_column(plain, existing_type=PLAIN_TYPES[plain], nullable=False)
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_email_domain_index"))
        batch_op.drop_constraint(batch_op.f("uq_users_email_index"), type_="unique")
        batch_op.drop_column("email_index")
        batch_op.drop_column("email_domain_index")
        batch_op.create_unique_constraint("uq_users_email", ["email"])
