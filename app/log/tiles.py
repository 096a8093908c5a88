"""A petition's log as C2SP tlog-tiles (c2sp.org/tlog-tiles): static, cacheable files that standard tooling and
CDNs can mirror and check, next to the JSON API.

    <prefix>/checkpoint                      the latest checkpoint, with its cosignatures (text)
    <prefix>/tile/<L>/<N>[.p/<W>]            hashes: at level L, MTH of 256**L consecutive leaves each
    <prefix>/tile/entries/<N>[.p/<W>]        entries, each a big-endian uint16 length and its bytes

with <prefix> = /api/v1/petitions/<id>/log. A tile at level L is the stored subtree hashes of height 8L
(app/log/tree.py keeps every complete aligned subtree), so serving one is a single indexed read. Only what the
latest checkpoint covers is served, as with the JSON API: a full tile once the checkpoint holds all of it, a
partial one of any width the checkpoint covers (those of the checkpoint's own size among them).
"""

from __future__ import annotations

import re
import struct

from sqlalchemy.orm import Session

from app.log import tree

WIDTH = 256
_INDEX_PART = re.compile(r"^(?:x\d{3}/)*\d{3}$")
# A tile index is a uint64 (C2SP tlog-tiles): at most 20 digits, so 7 three-digit elements. A longer path names no
# tile, and is refused before its digits are read as one number (thousands of elements passed Python's limit on
# the digits int() converts, a 500).
MAX_INDEX_PARTS = 7


class NotATile(ValueError):
    """A path that names no tile of this log (malformed, or beyond its latest checkpoint)."""


def encode_index(index: int) -> str:
    """The spec's zero-padded three-digit path elements, all but the last prefixed with x (1234067 is
    x001/x234/067)."""
    parts = []
    while True:
        parts.append(f"{index % 1000:03d}")
        index //= 1000
        if not index:
            break
    return "/".join([f"x{part}" for part in reversed(parts[1:])] + [parts[0]])


def parse(path: str) -> tuple[int | None, int, int | None]:
    """(level, or None for an entry bundle; tile index; width of a partial tile, or None for a full one)."""
    head, _, rest = path.partition("/")
    if head == "entries":
        level = None
    elif head.isdigit() and str(int(head)) == head and int(head) <= 63:
        level = int(head)
    else:
        raise NotATile("not a tile path")
    width = None
    if ".p/" in rest:
        rest, _, width_text = rest.partition(".p/")
        if not width_text.isdigit() or str(int(width_text)) != width_text or not 1 <= int(width_text) < WIDTH:
            raise NotATile("a partial tile's width is 1 to 255")
        width = int(width_text)
    if rest.count("/") >= MAX_INDEX_PARTS:
        raise NotATile("a tile index is a uint64, at most seven path elements")
    if not _INDEX_PART.match(rest):
        raise NotATile("a tile index is three-digit path elements")
    index = int(rest.replace("x", "").replace("/", ""))
    if index >= 2**64:
        raise NotATile("a tile index is a uint64")
    if encode_index(index) != rest:
        raise NotATile("a tile index has no leading zero elements")
    return level, index, width


def _hashes_per_tile_entry(level: int) -> int:
    return WIDTH**level


def read_tile(db: Session, petition_id: int, size: int, level: int, index: int, width: int | None) -> bytes:
    """The tile's concatenated 32-byte hashes, or NotATile when the checkpoint of `size` does not cover it."""
    count = width or WIDTH
    span = _hashes_per_tile_entry(level)  # leaves under each hash
    if (index * WIDTH + count) * span > size:
        raise NotATile("the latest checkpoint does not cover this tile")
    keys = [(8 * level, index * WIDTH + i) for i in range(count)]
    hashes = tree.read(db, petition_id, keys)
    return b"".join(hashes[key] for key in keys)


def read_bundle(db: Session, petition_id: int, size: int, index: int, width: int | None) -> bytes:
    """The entry bundle: each entry as a big-endian uint16 length and its bytes."""
    count = width or WIDTH
    start = index * WIDTH
    if start + count > size:
        raise NotATile("the latest checkpoint does not cover these entries")
    rows = db.execute(tree.select_leaves(petition_id, start, start + count)).all()
    if any(len(entry) > 0xFFFF for _index, entry in rows):
        raise NotATile("an entry is too long for a bundle")  # canonical JSON entries are well under 2 KB
    return b"".join(struct.pack(">H", len(entry)) + bytes(entry) for _index, entry in rows)
