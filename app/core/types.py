"""Types shared by routes."""

from typing import Annotated

from fastapi import Path

# Row ids in paths: positive and within the databases' integer range, so a huge number is a clear 422
# rather than an overflow inside the database driver.
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
