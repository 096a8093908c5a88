"""Re-sealing personal data under the current key (`undersigned keys rotate`).

Every sealed value names the key that sealed it; rotation opens each value not under the current key and
seals it again, in batches that are committed one by one, so an interrupted rotation is resumed by running it
again (values already under the current key are skipped). Blind indexes are recomputed under the current index
key at the same time. The run ends with an audit entry naming the key and the counts, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, Table, select, type_coerce, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.ballots import answers as ballot_answers
from app.core import crypto
from app.core.database import Base, rows_changed, table_of
from app.core.runtime import Runtime
from app.models.accounts import User, email_indexes
from app.models.anonymous import DiscussionKey, IssuingKey, SignerKey
from app.models.ballots import Ballot, BallotAnswer
from app.models.signatures import Signature
from app.petitions import issuing_keys
from app.signatures.service import name_context

BATCH = 1000


@dataclass
class Rotation:
    key_id: str
    resealed: dict[str, int] = field(default_factory=dict)
    reindexed: int = 0

    @property
    def total(self) -> int:
        return sum(self.resealed.values())


def sealed_columns() -> Iterator[tuple[Table, str, str]]:
    """(table, column key, associated data) of every column declared `Sealed`."""
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, crypto.Sealed):
                yield table, column.key, column.type.context


def _reseal(
    sessions: sessionmaker[Session],
    table: Table,
    column_name: str,
    primary_key: str,
    context_of: Callable[[Sequence[Any]], str],
    current: str,
    context_from: Sequence[str] = ("petition_id",),
) -> int:
    """Re-seal one column's values that another key sealed; returns how many. `context_of` is handed each row as
    (primary key, sealed value, *the `context_from` columns)."""
    raw = type_coerce(table.c[column_name], LargeBinary)
    key = table.c[primary_key]
    context_columns = [table.c[name] for name in context_from if name in table.c and name != primary_key]
    done, last = 0, None
    while True:
        with sessions.begin() as db:
            statement = select(key, raw, *context_columns).where(table.c[column_name].is_not(None)).order_by(key)
            if last is not None:
                statement = statement.where(key > last)
            rows = db.execute(statement.limit(BATCH)).all()
            if not rows:
                return done
            for row in rows:
                identity, sealed = row[0], row[1]
                if crypto.key_id_of(sealed) == current:
                    continue
                context = context_of(row)
                plain = crypto.open_sealed(sealed, context=context)
                # Only if the value is still the one read: a change made meanwhile (a new name) is kept, and
                # was sealed under the current key anyway.
                changed = rows_changed(
                    db.execute(
                        update(table)
                        .where(key == identity, raw == type_coerce(sealed, LargeBinary))
                        .values({column_name: type_coerce(crypto.seal(plain, context=context), LargeBinary)})
                    )
                )
                done += changed
            last = rows[-1][0]


def _reindex(sessions: sessionmaker[Session]) -> int:
    """Recompute accounts' blind indexes under the current index key (only those that differ are written)."""
    done, last = 0, 0
    while True:
        with sessions.begin() as db:
            rows = db.execute(
                select(User.id, User.email, User.email_index, User.email_domain_index)
                .where(User.id > last)
                .order_by(User.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return done
            for user_id, email, index, domain_index in rows:
                fresh = email_indexes(email)
                if fresh != (index, domain_index):
                    db.execute(
                        update(User)
                        .where(User.id == user_id)
                        .values(email_index=fresh[0], email_domain_index=fresh[1])
                        .execution_options(synchronize_session=False)
                    )
                    done += 1
            last = rows[-1][0]


def _same_for_every_row(context: str) -> Callable[[Sequence[Any]], str]:
    return lambda _row: context


def _by_petition(context: Callable[[int], str]) -> Callable[[Sequence[Any]], str]:
    """A petition key's context, from the row's petition id (its primary key, first)."""
    return lambda row: context(row[0])


def rotate(*, sessions: sessionmaker[Session], rt: Runtime) -> Rotation:
    current = crypto.current_key_id()
    rotation = Rotation(key_id=current)
    for table, column_name, context in sealed_columns():
        rotation.resealed[f"{table.name}.{table.c[column_name].name}"] = _reseal(
            sessions, table, column_name, "id", _same_for_every_row(context), current
        )
    signatures = table_of(Signature)
    rotation.resealed["signatures.sealed_name"] = _reseal(
        sessions, signatures, "sealed_name", "id", lambda row: name_context(row[2]), current
    )
    # The private keys that blind-sign anonymous credentials: a petition's three, each sealed under its petition,
    # and a poll's own, sealed under its key id. One left under a removed key could never be opened again.
    for model, key_context in (
        (IssuingKey, issuing_keys.context),
        (DiscussionKey, issuing_keys.discussion_context),
        (SignerKey, issuing_keys.signer_context),
    ):
        table = table_of(model)
        rotation.resealed[f"{table.name}.sealed_private"] = _reseal(
            sessions, table, "sealed_private", "petition_id", _by_petition(key_context), current
        )
    rotation.resealed["ballots.sealed_private"] = _reseal(
        sessions,
        table_of(Ballot),
        "sealed_private",
        "id",
        lambda row: Ballot.context_for_key(row[2]),
        current,
        context_from=("key_id",),
    )
    # Each answer's group for a poll's breakdown (issue #25), sealed per poll.
    rotation.resealed["ballot_answers.sealed_group"] = _reseal(
        sessions,
        table_of(BallotAnswer),
        "sealed_group",
        "id",
        lambda row: ballot_answers.group_context(row[2]),
        current,
        context_from=("ballot_id",),
    )
    rotation.reindexed = _reindex(sessions)
    with sessions.begin() as db:
        audit.record(
            db=db,
            rt=rt,
            actor=None,
            action="keys.rotated",
            subject=f"personal data key {current}",
            detail={
                "resealed": rotation.total,
                "reindexed": rotation.reindexed,
                **{name: count for name, count in rotation.resealed.items() if count},
            },
        )
    return rotation
