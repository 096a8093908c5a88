"""The stored Merkle tree: appended in batches of any size, it has the RFC 9162 root, and its proofs, read from
the database, are the ones a tree in memory gives, and verify."""

from __future__ import annotations

import random

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import merkle
from app.core.runtime import Runtime
from app.log import tree
from app.models.log import LogNode
from tests import factories


def test_appends_in_batches_give_the_rfc_root_and_the_same_proofs(db: Session, rt: Runtime) -> None:
    petition = factories.draft_petition(db, rt)  # not opened: its log is empty (opening writes entry 0)
    rng = random.Random(9162)
    entries: list[bytes] = []
    roots: dict[int, bytes] = {}
    while len(entries) < 150:
        batch = [f"entry {len(entries) + i}".encode() for i in range(rng.choice((1, 1, 2, 3, 7, 16, 33)))]
        first, root = tree.append(db, petition.id, batch)
        assert first == len(entries)
        entries += batch
        leaves = [merkle.leaf_hash(entry) for entry in entries]
        assert root == merkle.root_of(leaves)
        roots[len(entries)] = root
    memory = merkle.memory_subtrees([merkle.leaf_hash(entry) for entry in entries])
    size = len(entries)
    assert tree.head(db, petition.id).size == size  # type: ignore[union-attr]
    for index in (0, 1, 63, 64, 100, size - 1):
        proof = tree.inclusion_proof(db, petition.id, index, size)
        assert proof == merkle.inclusion_proof(index, size, memory)
        merkle.verify_inclusion(index, size, merkle.leaf_hash(entries[index]), proof, roots[size])
    for old_size in sorted(roots)[:: max(1, len(roots) // 8)]:
        proof = tree.consistency_proof(db, petition.id, old_size, size)
        assert proof == merkle.consistency_proof(old_size, size, memory)
        merkle.verify_consistency(old_size, size, roots[old_size], roots[size], proof)
        assert tree.root_at(db, petition.id, old_size) == roots[old_size]
    # Every complete subtree of two or more leaves is stored, once: size - popcount(size) of them.
    stored = db.scalar(select(func.count()).select_from(LogNode).where(LogNode.petition_id == petition.id))
    assert stored == size - size.bit_count()


def test_logs_of_different_petitions_are_separate(db: Session, rt: Runtime) -> None:
    first, second = factories.draft_petition(db, rt), factories.draft_petition(db, rt, title="Another")
    _, root_a = tree.append(db, first.id, [b"a", b"b", b"c"])
    _, root_b = tree.append(db, second.id, [b"x"])
    assert root_a == merkle.root_of([merkle.leaf_hash(x) for x in (b"a", b"b", b"c")])
    assert root_b == merkle.leaf_hash(b"x")
    assert tree.inclusion_proof(db, second.id, 0, 1) == []
