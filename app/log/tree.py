"""The stored Merkle tree of a petition's log: appending batches, and proofs read by key.

Appending leaf i completes the aligned subtrees that end at i; each is stored once. The "frontier" of a tree of
n leaves (its complete subtrees from left to right, one per set bit of n) is all an append needs from before,
and all the root needs. A proof names the subtrees it is made of; they are read in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Select, insert, literal, select, tuple_, union_all
from sqlalchemy.orm import Session

from app.core import merkle
from app.models.log import LogHead, LogLeaf, LogNode

Key = tuple[int, int]  # (level, index): leaves [index * 2^level, (index + 1) * 2^level)


def frontier(size: int) -> list[Key]:
    """The complete subtrees that make up a tree of `size` leaves, largest (leftmost) first."""
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def _perfect(start: int, end: int) -> Key | None:
    width = end - start
    if width & (width - 1) == 0 and start % width == 0:
        return (width.bit_length() - 1, start // width)
    return None


def _range_keys(start: int, end: int, found: list[Key]) -> None:
    key = _perfect(start, end)
    if key is not None:
        found.append(key)
        return
    split = 1 << ((end - start - 1).bit_length() - 1)
    _range_keys(start, start + split, found)
    _range_keys(start + split, end, found)


def _range_hash(start: int, end: int, hashes: dict[Key, bytes]) -> bytes:
    key = _perfect(start, end)
    if key is not None:
        return hashes[key]
    split = 1 << ((end - start - 1).bit_length() - 1)
    return merkle.node_hash(_range_hash(start, start + split, hashes), _range_hash(start + split, end, hashes))


def read(db: Session, petition_id: int, keys: Iterable[Key]) -> dict[Key, bytes]:
    """Stored subtree hashes by key, in one query (leaves and larger subtrees together)."""
    keys = set(keys)
    leaves = [index for level, index in keys if level == 0]
    nodes = [(level, index) for level, index in keys if level > 0]
    parts = []
    if leaves:
        parts.append(
            select(literal(0).label("level"), LogLeaf.index.label("index"), LogLeaf.hash.label("hash")).where(
                LogLeaf.petition_id == petition_id, LogLeaf.index.in_(leaves)
            )
        )
    if nodes:
        # A row-value IN list: one index probe per key, and cheap to plan (an OR of pairs was not).
        parts.append(
            select(LogNode.level, LogNode.index, LogNode.hash).where(
                LogNode.petition_id == petition_id, tuple_(LogNode.level, LogNode.index).in_(nodes)
            )
        )
    found: dict[Key, bytes] = {}
    if parts:
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        for level, index, digest in db.execute(statement):
            found[(level, index)] = digest
    missing = keys - found.keys()
    if missing:
        raise LookupError(f"the log of petition {petition_id} lacks subtrees {sorted(missing)}")
    return found


def head(db: Session, petition_id: int, *, lock: bool = False) -> LogHead | None:
    statement = select(LogHead).where(LogHead.petition_id == petition_id)
    return db.scalar(statement.with_for_update() if lock else statement)


def append(db: Session, petition_id: int, entries: Sequence[bytes]) -> tuple[int, bytes]:
    """Append entries in order; returns the index of the first and the new root."""
    current = head(db, petition_id, lock=True)
    if current is None:
        current = LogHead(petition_id=petition_id, size=0, root=merkle.EMPTY_ROOT)
        db.add(current)
        db.flush()
    size = current.size
    # The complete subtrees the new leaves combine with, then every one they complete.
    known = read(db, petition_id, frontier(size)) if size else {}
    leaf_rows, node_rows = [], []
    for offset, entry in enumerate(entries):
        index = size + offset
        digest = merkle.leaf_hash(entry)
        leaf_rows.append({"petition_id": petition_id, "index": index, "entry": entry, "hash": digest})
        known[(0, index)] = digest
        level, position = 0, index
        while position & 1:  # a right child: its parent is now complete
            parent = merkle.node_hash(known[(level, position - 1)], known[(level, position)])
            level, position = level + 1, position >> 1
            known[(level, position)] = parent
            node_rows.append({"petition_id": petition_id, "level": level, "index": position, "hash": parent})
    if leaf_rows:
        db.execute(insert(LogLeaf), leaf_rows)
    if node_rows:
        db.execute(insert(LogNode), node_rows)
    new_size = size + len(entries)
    root = _root_from(new_size, known)
    current.size, current.root = new_size, root
    db.flush()
    return size, root


def _root_from(size: int, hashes: dict[Key, bytes]) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    parts = [hashes[key] for key in frontier(size)]
    root = parts[-1]
    for part in reversed(parts[:-1]):
        root = merkle.node_hash(part, root)
    return root


def root_at(db: Session, petition_id: int, size: int) -> bytes:
    """The root the log had at `size` leaves (for checkpoints and consistency proofs)."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return _root_from(size, read(db, petition_id, frontier(size)))


def _proof(db: Session, petition_id: int, build: Callable[[merkle.SubtreeHash], list[bytes]]) -> list[bytes]:
    """Run a proof builder twice: first to learn which subtrees it reads, then on their hashes."""
    needed: list[Key] = []

    def record(start: int, end: int) -> bytes:
        _range_keys(start, end, needed)
        return b"\x00" * 32

    build(record)
    hashes = read(db, petition_id, needed)
    return build(lambda start, end: _range_hash(start, end, hashes))


def inclusion_proof(db: Session, petition_id: int, index: int, size: int) -> list[bytes]:
    return _proof(db, petition_id, lambda subtree: merkle.inclusion_proof(index, size, subtree))


def consistency_proof(db: Session, petition_id: int, old_size: int, new_size: int) -> list[bytes]:
    return _proof(db, petition_id, lambda subtree: merkle.consistency_proof(old_size, new_size, subtree))


def select_leaves(petition_id: int, start: int, end: int) -> Select[int, bytes]:
    """Leaves [start, end) as (index, entry) rows, in order."""
    return (
        select(LogLeaf.index, LogLeaf.entry)
        .where(LogLeaf.petition_id == petition_id, LogLeaf.index >= start, LogLeaf.index < end)
        .order_by(LogLeaf.index)
    )
