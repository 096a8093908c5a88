"""The ceiling the sign path is compared with: FastAPI + SQLAlchemy inserting one row per request, nothing else.

Served by uvicorn from bench/sign_throughput.py with the same workers and database as the real app.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from app.core.database import build_engine, build_sessionmaker
from app.core.settings import Settings

metadata = MetaData()
bench_rows = Table(
    "bench_rows",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("petition_id", Integer, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("signed_hour", DateTime(timezone=True), nullable=False),
)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["BENCH_DATABASE_URL"]
    settings = Settings(database_url=url)  # the same pool as the real app's, from the same settings
    pool = (
        {}
        if url.startswith("sqlite")
        else {"pool_size": settings.database_pool_size, "max_overflow": settings.database_max_overflow}
    )
    engine = build_engine(url, **pool)
    app.state.sessions = build_sessionmaker(engine)
    yield
    engine.dispose()


app = FastAPI(lifespan=lifespan)


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions.begin() as session:
        yield session


@app.post("/insert/{account_id}", status_code=201)
def insert_row(account_id: int, db: Annotated[Session, Depends(get_db, scope="function")]) -> dict[str, str]:
    row_id = secrets.token_hex(16)
    db.execute(
        insert(bench_rows).values(
            id=row_id,
            petition_id=1,
            account_id=account_id,
            signed_hour=datetime.now(UTC).replace(minute=0, second=0, microsecond=0),
        )
    )
    return {"id": row_id}
