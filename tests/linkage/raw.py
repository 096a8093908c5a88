"""What the linkage attacker reads, raw: every table with its physical order (SQLite `rowid`; PostgreSQL `ctid`
and `xmin`), PostgreSQL's heap pages through `pageinspect` (dead tuples included), and records carved out of the
bytes of a SQLite file or its WAL (a deleted row stays in a freeblock until overwritten; a page's older images stay
in the WAL). Nothing here comes from the application: only the database drivers and the file formats."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

ACCOUNT_COLUMNS = {
    "user_id",
    "account_id",
    "author_id",
    "actor_id",
    "creator_id",
    "moderator_id",
    "responder_id",
    "granted_by_id",
    "updated_by_id",
    "moderation_lock_by_id",
    "owner_id",
    "recipient_id",
}
FINE = 1.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


def _account_columns(table: Table) -> list[str]:
    """The columns of a table that hold an account's id."""
    return [column for column in table.columns if column in ACCOUNT_COLUMNS or column.endswith("_by_id")]


@dataclass
class Table:
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]  # each with "__pos" (physical order) and, on PostgreSQL, "__xmin"
    types: list[str] = field(default_factory=list)  # declared column types (SQLite), for carving


# -- reading ---------------------------------------------------------------------------------------------------


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


_DATETIME_TEXT = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?$")
_DATE_TEXT = re.compile(r"^\d{4}-\d\d-\d\d$")


def _value(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, datetime):
        return _naive(value)
    if isinstance(value, str):
        if _DATETIME_TEXT.match(value):
            try:
                return _naive(datetime.fromisoformat(value))
            except ValueError:
                return value
        if _DATE_TEXT.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                return value
    return value


def _precision(value: datetime | date) -> float:
    if not isinstance(value, datetime):
        return DAY
    if value.microsecond or value.second:
        return FINE
    if value.minute:
        return MINUTE
    if value.hour:
        return HOUR
    return DAY


def read_sqlite(path: str) -> dict[str, Table]:
    connection = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        tables = {}
        for name in names:
            info = list(connection.execute(f'PRAGMA table_info("{name}")'))
            columns = [row[1] for row in info]
            try:
                cursor = connection.execute(f'SELECT rowid, * FROM "{name}"')
                with_rowid = True
            except sqlite3.OperationalError:  # WITHOUT ROWID
                cursor = connection.execute(f'SELECT * FROM "{name}"')
                with_rowid = False
            rows = []
            for index, raw in enumerate(cursor.fetchall()):
                values = raw[1:] if with_rowid else raw
                row = {column: _value(value) for column, value in zip(columns, values, strict=True)}
                row["__pos"] = (raw[0],) if with_rowid else (index,)
                row["__xmin"] = None
                rows.append(row)
            tables[name] = Table(name, columns, rows, [str(row[2]).upper() for row in info])
        return tables
    finally:
        connection.close()


def _pg_url(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def read_postgresql(url: str) -> dict[str, Table]:
    import psycopg

    tables = {}
    with psycopg.connect(_pg_url(url), autocommit=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE'"
            )
        ]
        for name in names:
            columns = [
                row[0]
                for row in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
                    "ORDER BY ordinal_position",
                    (name,),
                )
            ]
            rows = []
            for raw in connection.execute(f'SELECT ctid::text, xmin::text::bigint, * FROM "{name}"'):
                block, offset = raw[0].strip("()").split(",")
                row = {column: _value(value) for column, value in zip(columns, raw[2:], strict=True)}
                row["__pos"] = (int(block), int(offset))
                row["__xmin"] = int(raw[1])
                rows.append(row)
            tables[name] = Table(name, columns, rows)
    return tables


@dataclass
class HeapTuple:
    table: str
    position: tuple[int, int]  # page, line pointer
    xmin: int
    dead: bool  # deleted or replaced by a newer version
    values: dict[str, bytes | None]  # raw attribute bytes by column


def postgresql_tuples(url: str, tables: dict[str, Table], *, every_table: bool = False) -> list[HeapTuple]:
    """Every tuple in every heap page of every table with an account column (or of every table), dead ones
    included."""
    import psycopg

    found = []
    with psycopg.connect(_pg_url(url), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        for table in tables.values():
            if not (every_table or _account_columns(table)):
                continue
            attributes = [
                row[0]
                for row in connection.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
                    (f'"{table.name}"',),
                )
            ]
            size = connection.execute(
                "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int", (f'"{table.name}"',)
            ).fetchone()
            assert size is not None
            pages = size[0]
            for page in range(int(pages)):
                for lp, xmin, xmax, lp_flags, attrs in connection.execute(
                    "SELECT lp, t_xmin::text::bigint, t_xmax::text::bigint, lp_flags, t_attrs FROM "
                    "heap_page_item_attrs(get_raw_page(%s, %s), %s::regclass)",
                    (table.name, page, f'"{table.name}"'),
                ):
                    if attrs is None:
                        continue
                    values = {
                        name: (bytes(value) if value is not None else None)
                        for name, value in zip(attributes, attrs, strict=False)
                    }
                    found.append(HeapTuple(table.name, (page, lp), int(xmin), bool(xmax) or lp_flags != 1, values))
    return found


def _int(raw: bytes | None) -> int | None:
    return int.from_bytes(raw, "little", signed=True) if raw is not None and len(raw) in (2, 4, 8) else None


# -- SQLite record carving -------------------------------------------------------------------------------------


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        if offset + i >= len(data):
            raise ValueError("truncated")
        byte = data[offset + i]
        if i == 8:
            return (value << 8) | byte, offset + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, offset + i + 1
    raise ValueError("varint")


def _encode_varint(value: int) -> bytes:
    if value < 0x80:
        return bytes([value])
    groups = []
    while value:
        groups.append(value & 0x7F)
        value >>= 7
    groups.reverse()
    return bytes([0x80 | g for g in groups[:-1]] + [groups[-1]])


def _serials(declared: str) -> Callable[[int], bool]:
    """Which serial types a column of this declared type can hold (NULL always)."""
    if "BOOL" in declared:
        return lambda serial: serial in (0, 1, 8, 9)
    if "INT" in declared:
        return lambda serial: serial in (0, 1, 2, 3, 4, 5, 6, 8, 9)
    if any(word in declared for word in ("FLOA", "REAL", "DOUB", "NUMERIC")):
        return lambda serial: 0 <= serial <= 9
    if any(word in declared for word in ("CHAR", "TEXT", "CLOB", "DATE", "TIME")):
        return lambda serial: serial == 0 or (serial >= 13 and serial % 2 == 1)
    if "BLOB" in declared:
        return lambda serial: serial == 0 or (serial >= 12 and serial % 2 == 0)
    return lambda serial: serial not in (10, 11)


def _record(data: bytes, start: int, allowed: list[Callable[[int], bool]], *, header: bool) -> list[Any] | None:
    """A SQLite record of `columns` values starting at `start`: its header (size, serial types), then the
    values. With header=False, `start` is the first serial type: a freed cell's first four bytes (payload size,
    rowid, header size) are overwritten by the freeblock's link, and the serial types after them survive."""
    columns = len(allowed)
    try:
        if header:
            if not columns < data[start] <= 2 * columns + 2:
                return None
            header_size, offset = _varint(data, start)
            end_header = start + header_size
        else:
            offset, end_header = start, None
        types: list[int] = []
        while len(types) < columns and (end_header is None or offset < end_header):
            serial, offset = _varint(data, offset)
            if not allowed[len(types)](serial):
                return None
            types.append(serial)
        if len(types) != columns or (end_header is not None and offset != end_header):
            return None
        end_header = offset
        values: list[Any] = []
        position = end_header
        for serial in types:
            if serial == 0:
                values.append(None)
            elif 1 <= serial <= 6:
                size = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}[serial]
                values.append(int.from_bytes(data[position : position + size], "big", signed=True))
                position += size
            elif serial == 7:
                values.append(data[position : position + 8])
                position += 8
            elif serial in (8, 9):
                values.append(serial - 8)
            elif serial >= 12:
                size = (serial - 12) // 2 if serial % 2 == 0 else (serial - 13) // 2
                values.append(data[position : position + size])
                position += size
            else:
                return None
            if position > len(data):
                return None
        return values
    except ValueError:
        return None


def _declared_length(declared: str) -> int | None:
    """N for a column declared CHAR(N) or VARCHAR(N) (the characters the schema allows), else None."""
    found = re.search(r"CHAR\s*\(\s*(\d+)\s*\)", declared.upper())
    return int(found.group(1)) if found else None


def _fits(types: list[str], values: list[Any]) -> bool:
    """Whether each text value is within its column's declared length: SQLite stores longer ones, but the schema is
    the application's (PostgreSQL refuses them), so a record that needs one is not a record of that table. The
    attacker reads the declared types in sqlite_master, as this carver does: without it, a composite key's index
    entry (a poll's id, a 64-character tag, a rowid) read as a member_groups row (an account, a kind of at most 16
    characters, a group) once named the account whose id equals the poll's."""
    for declared, value in zip(types, values, strict=False):
        limit = _declared_length(declared)
        if limit is not None and isinstance(value, bytes) and len(value.decode("utf-8", "replace")) > limit:
            return False
    return True


def _carve_owners(
    data: bytes,
    found_at: int,
    needle: bytes,
    specs: dict[str, tuple[list[str], list[str], list[str]]],
    accounts: set[int],
) -> list[tuple[set[int], str]]:
    """Records of tables with an account column that hold the bytes found at `found_at` as one whole value: a
    live or deleted row, wherever its bytes still are (a page, a freeblock, a WAL frame)."""
    results = []
    # The record's header holds the value's serial type (text or blob of its length) within its first
    # 2 * columns + 2 bytes: only starts just before such bytes can begin the record.
    low = max(0, found_at - 500)
    marks = []
    for serial in (2 * len(needle) + 13, 2 * len(needle) + 12):
        encoded = _encode_varint(serial)
        position = data.find(encoded, low, found_at)
        while position != -1:
            marks.append(position)
            position = data.find(encoded, position + 1, found_at)
    for table_name, (columns, account_columns, types) in specs.items():
        allowed = [_serials(declared) for declared in types]
        starts = sorted({start for mark in marks for start in range(max(low, mark - 2 * len(columns) - 2), mark + 1)})
        for start in starts:
            for header in (True, False):
                values = _record(data, start, allowed, header=header)
                if values is None or not any(isinstance(v, bytes) and v == needle for v in values):
                    continue
                if not _fits(types, values):
                    continue
                row = dict(zip(columns, values, strict=False))
                owners = {v for c in account_columns if isinstance(v := row.get(c), int) and v in accounts}
                if owners:
                    results.append((owners, table_name))
                    return results
    return results
