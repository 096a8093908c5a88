"""Types shared by routes."""

from typing import Annotated

from fastapi import Path, Query

# Row ids in paths: positive and within the databases' integer range, so a huge number is a clear 422
# rather than an overflow inside the database driver.
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]

# Where a list starts (offset): within the same range, so a huge offset is a plain range error, not a driver
# overflow (a 500 on SQLite) or a refusal by PostgreSQL that spoke of NUL characters (issue #21).
Offset = Annotated[int, Query(ge=0, le=2_147_483_647, description="How many to skip.")]
