"""Full-text search over petitions: SQLite FTS5 or PostgreSQL tsvector behind one interface.

The SQLite index is an external-content FTS5 table kept in step by triggers; the PostgreSQL index is a GIN
index on the same expression the queries use (PG_DOCUMENT). Both are created by the migration
`petitions and signatures`; a change to either needs a new migration.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnClause, Select, column, func, literal_column, select, table
from sqlalchemy.orm import Session

from app.models.petitions import Petition

FTS_TABLE = "petitions_fts"
PG_INDEX = "ix_petitions_search"
PG_DOCUMENT = (
    "to_tsvector('english', coalesce(title, '') || ' ' || coalesce(ask, '') || ' ' || coalesce(background, ''))"
)
MAX_TERMS = 12
# Words too common to narrow a search. PostgreSQL's English configuration drops them itself; FTS5 would
# otherwise require each of them to appear.
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "may",
        "me",
        "more",
        "most",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "out",
        "over",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "every",
        "each",
        "please",
        "make",
    ]
)


def is_search_object(name: str | None) -> bool:
    """Objects the migrations create for search that the models do not describe (for `alembic check`)."""
    return name is not None and (name.startswith(FTS_TABLE) or name == PG_INDEX)


def terms(query: str) -> list[str]:
    """Words of a query, lower-cased, letters and digits only: nothing reaches the engine's query syntax."""
    words = [word for word in re.findall(r"[^\W_]{2,}", query.lower()) if word not in STOP_WORDS]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def ranked_ids(db: Session, query: str, *, any_term: bool = False) -> Select[int, float] | None:
    """A query of (petition_id, rank) for petitions matching `query`, best first by ascending rank.

    All words must match, or any of them with `any_term` (used to find similar petitions).
    Returns None when the query has no searchable words.
    """
    words = terms(query)
    if not words:
        return None
    joiner = " OR " if any_term else " "
    if db.get_bind().dialect.name == "sqlite":
        fts = table(FTS_TABLE, column("rowid"), column("rank"))
        expression = joiner.join(f'"{word}"' for word in words)
        return select(fts.c.rowid.label("petition_id"), fts.c.rank.label("rank")).where(
            literal_column(FTS_TABLE).op("MATCH")(expression)
        )
    document: ColumnClause[Any] = literal_column(PG_DOCUMENT)
    tsquery = func.to_tsquery("english", (" | " if any_term else " & ").join(words))
    return select(Petition.id.label("petition_id"), (-func.ts_rank(document, tsquery)).label("rank")).where(
        document.op("@@")(tsquery)
    )
