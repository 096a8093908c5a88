"""The attacker looking for a wallet secret (issue 19: "the server never sees the secret"): given everything the
deployment wrote (every table raw, PostgreSQL's heap pages with their dead tuples and its WAL, the SQLite file and its WAL,
every log line, every copy of Redis), find any wallet secret, recovery code or linking key in any encoding, and try
to open every sealed box found with every key found.

Nothing here comes from the application: the stores are read with the drivers and file bytes (tests/linkage/raw.py),
and the sealed box is opened as the spec says it is sealed (AES-256-GCM, IV || ciphertext with tag, associated data
the two devices' public keys).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import permutations
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.linkage.raw import postgresql_tuples, read_postgresql, read_sqlite

SEALED_LEN = 12 + 16 + 16  # IV || the 16-byte secret encrypted || tag
POINT_LEN = 65  # an uncompressed P-256 point
KEY_LEN = 32
TOKEN = re.compile(rb"[A-Za-z0-9_\-+/]{20,}={0,2}")
HEX = re.compile(rb"\b[0-9a-fA-F]{32,}\b")


@dataclass(frozen=True)
class Item:
    where: str
    data: bytes


@dataclass
class Stores:
    """What the deployment wrote, as (where, bytes) items."""

    items: list[Item] = field(default_factory=list)
    values: list[Item] = field(default_factory=list)  # whole column values (for boxes and keys found as values)

    def add(self, where: str, value: Any, *, whole: bool = True) -> None:
        if value is None:
            return
        if isinstance(value, memoryview):
            value = bytes(value)
        data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
        self.items.append(Item(where, data))
        if whole:
            self.values.append(Item(where, data))


def read_stores(
    *, kind: str, database_url: str, files: dict[str, bytes], log_lines: Iterable[str], redis_copies: Iterable[Any]
) -> Stores:
    """Every table raw (every column of every row), PostgreSQL's heap tuples of every table (live and dead), the
    SQLite files' bytes (or any other files given, by path: PostgreSQL's WAL segments), every log line, every Redis
    key and value of every copy."""
    stores = Stores()
    tables = read_sqlite(database_url.removeprefix("sqlite:///")) if kind == "sqlite" else read_postgresql(database_url)
    for table in tables.values():
        for row in table.rows:
            for column, value in row.items():
                if not column.startswith("__"):
                    stores.add(f"{table.name}.{column} (row {row['__pos']})", value)
    if kind == "postgresql":
        for heap_tuple in postgresql_tuples(database_url, tables, every_table=True):
            state = "dead" if heap_tuple.dead else "live"
            for column, raw in heap_tuple.values.items():
                stores.add(f"{heap_tuple.table}.{column} ({state} tuple {heap_tuple.position})", raw)
    for label, data in files.items():
        stores.add(f"the file {label}" if "/" in label else f"the SQLite file {label}", data, whole=False)
    for number, line in enumerate(log_lines):
        stores.add(f"log line {number}", line)
    for copy in redis_copies:
        for key in copy.keys:
            where = f"Redis copy of {copy.at:%H:%M:%S}, key {key['key']!r}"
            stores.add(where + " (name)", key["key"].encode("latin-1"))
            value = key["value"]
            stores.add(
                where,
                value.encode("latin-1") if isinstance(value, str) else json.dumps(value).encode("latin-1", "replace"),
            )
    return stores


# -- the needles -----------------------------------------------------------------------------------------------


def encodings(value: bytes) -> dict[str, bytes]:
    """The ways a byte string is written down: raw, hex (both cases), base64 and base64url (padded or not)."""
    standard = base64.b64encode(value)
    url = base64.urlsafe_b64encode(value)
    return {
        "raw": value,
        "hex": value.hex().encode(),
        "HEX": value.hex().upper().encode(),
        "base64": standard,
        "base64 unpadded": standard.rstrip(b"="),
        "base64url": url,
        "base64url unpadded": url.rstrip(b"="),
    }


def code_forms(code: str) -> dict[str, bytes]:
    """A code as a person or a program might write it: as shown (groups of four), without hyphens, lower case."""
    plain = code.replace("-", "").replace(" ", "").upper()
    grouped = "-".join(plain[i : i + 4] for i in range(0, len(plain), 4))
    return {
        "as shown": grouped.encode(),
        "without hyphens": plain.encode(),
        "lower case": grouped.lower().encode(),
        "lower case without hyphens": plain.lower().encode(),
    }


@dataclass
class Finding:
    what: str
    where: str

    def __str__(self) -> str:
        return f"{self.what} in {self.where}"


def search(stores: Stores, secrets_by_name: dict[str, bytes], codes_by_name: dict[str, str]) -> list[Finding]:
    """Every place any of the secret values appears, in any encoding."""
    needles: list[tuple[str, bytes]] = []
    for name, value in secrets_by_name.items():
        needles += [(f"{name} ({form})", encoded) for form, encoded in encodings(value).items()]
    for name, code in codes_by_name.items():
        needles += [(f"{name} ({form})", encoded) for form, encoded in code_forms(code).items()]
    findings = []
    for item in stores.items:
        for what, needle in needles:
            if needle in item.data:
                findings.append(Finding(what, item.where))
    for item in stores.values:  # encoded inside another encoding (a base64 box holding the bytes), decoded
        for decoded in list(_decoded(item.data))[1:]:
            for what, needle in needles:
                if needle in decoded:
                    findings.append(Finding(f"{what}, decoded", item.where))
    return findings


# -- sealed boxes and keys -------------------------------------------------------------------------------------


def _decoded(data: bytes) -> Iterator[bytes]:
    """The value itself, and every base64, base64url or hex run in it, decoded."""
    yield data
    for match in TOKEN.finditer(data):
        text = match.group()
        for alphabet in (b"-_", b"+/"):
            with contextlib.suppress(binascii.Error, ValueError):
                yield base64.b64decode(text + b"=" * (-len(text) % 4), altchars=alphabet, validate=True)
    for match in HEX.finditer(data):
        text = match.group()
        if len(text) % 2 == 0:
            yield bytes.fromhex(text.decode())


def candidates(stores: Stores) -> tuple[dict[bytes, str], dict[bytes, str], dict[bytes, str]]:
    """Sealed boxes (44 bytes), keys (32 bytes) and public points (65 bytes, 0x04...) found in any value, log
    line or Redis value, raw or encoded: (boxes, keys, points), each value with where it was found."""
    boxes: dict[bytes, str] = {}
    keys: dict[bytes, str] = {}
    points: dict[bytes, str] = {}
    for item in stores.values:
        for value in _decoded(item.data):
            if len(value) == SEALED_LEN:
                boxes.setdefault(value, item.where)
            elif len(value) == KEY_LEN:
                keys.setdefault(value, item.where)
            elif len(value) == POINT_LEN and value[0] == 4:
                points.setdefault(value, item.where)
    return boxes, keys, points


def open_boxes(stores: Stores) -> list[Finding]:
    """Every sealed box found, tried with every key found, with the associated data of every pair of public keys
    found (and none): the box opened is the finding."""
    boxes, keys, points = candidates(stores)
    aads = [b""] + [a + b for a, b in permutations(points, 2)]
    findings = []
    for box, box_where in boxes.items():
        for key, key_where in keys.items():
            cipher = AESGCM(key)
            for aad in aads:
                try:
                    opened = cipher.decrypt(box[:12], box[12:], aad)
                except InvalidTag:
                    continue
                findings.append(
                    Finding(f"a sealed box opened ({opened.hex()}) with a key found in {key_where}", box_where)
                )
    return findings
