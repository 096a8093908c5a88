"""The app's PostgreSQL connections never compile a query to machine code (issue #24).

PostgreSQL compiles a query with LLVM (JIT) when the planner's estimate of its cost passes `jit_above_cost`. The
estimate is not the work: a member's petition page at 1,000,000 signatures runs one statement
(`repository.signed_in_reader`) that reads a handful of rows in about a millisecond, but its estimate came to
456,000, and compiling it took 36 ms of the 62 ms it cost (EXPLAIN ANALYZE, docs/benchmarks.md): 21-25 signed-in
pages a second where the same page at 100,000 signatures gave 340-370. Which statements cross the threshold depends
on the tables' statistics, so no test of one query could hold it off; the engine turns JIT off for every
connection (app/core/database.py, `build_engine`)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

pytestmark = pytest.mark.one_database("postgresql")


def test_not_even_a_query_the_planner_finds_costly_is_compiled(engine: Engine) -> None:
    with engine.connect() as connection:
        # The attacker's method: every query over the threshold, as a bad estimate makes a cheap one.
        connection.execute(text("SET jit_above_cost = 0"))
        plan = "\n".join(
            connection.execute(text("EXPLAIN (ANALYZE) SELECT count(*) FROM generate_series(1, 10)")).scalars()
        )
        assert "JIT:" not in plan, plan
        assert connection.execute(text("SHOW jit")).scalar() == "off"
