"""RFC 9162 Merkle trees: transparency-dev's published proof test data, and properties against a naive tree."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import merkle
from app.core.merkle import ProofError

DATA = Path(__file__).parent / "data" / "rfc9162"


def _b64(value: str | None) -> Any:
    """The bytes a vector gives; its nulls stay None and reach the verifier as they are (typed as bytes there),
    since some error cases are exactly that."""
    return None if value is None else base64.b64decode(value)


def _cases(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.parent.name}/{path.stem}", json.loads(path.read_text()))
        for path in sorted((DATA / kind).glob("*/*.json"))
    ]


@pytest.mark.parametrize(("name", "case"), _cases("inclusion"), ids=[name for name, _ in _cases("inclusion")])
def test_inclusion_vectors(name: str, case: dict[str, Any]) -> None:
    proof = [_b64(node) for node in case["proof"] or []]

    def check() -> None:
        if int(case["treeSize"]) == 0:
            raise ProofError("an empty tree includes nothing")
        merkle.verify_inclusion(
            int(case["leafIdx"]),
            int(case["treeSize"]),
            _b64(case["leafHash"]),
            proof,
            _b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize(("name", "case"), _cases("consistency"), ids=[name for name, _ in _cases("consistency")])
def test_consistency_vectors(name: str, case: dict[str, Any]) -> None:
    proof = [_b64(node) for node in case["proof"] or []]

    def check() -> None:
        size1, size2 = int(case["size1"]), int(case["size2"])
        merkle.verify_consistency(size1, size2, _b64(case["root1"]), _b64(case["root2"]), proof)

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def test_the_rfc_example_tree_of_seven_leaves() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(7)]
    subtree = merkle.memory_subtrees(leaves)
    assert subtree(0, 7) == merkle.root_of(leaves)
    # RFC 9162 2.1.3.1: the path for leaf d0 in the 7-leaf tree is [b, h, l] (here: d1, MTH(d2,d3), MTH(d4..d6)).
    assert merkle.inclusion_proof(0, 7, subtree) == [leaves[1], subtree(2, 4), subtree(4, 7)]
    # 2.1.4.1: PROOF(3, D[7]) = [c, d, g, l].
    assert merkle.consistency_proof(3, 7, subtree) == [leaves[2], leaves[3], subtree(0, 2), subtree(4, 7)]


leaves_strategy = st.lists(st.binary(min_size=0, max_size=8), min_size=1, max_size=70, unique=True)


@settings(max_examples=150, deadline=None)
@given(entries=leaves_strategy, data=st.data())
def test_every_inclusion_proof_verifies_and_no_other_leaf_passes(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    size = len(leaves)
    root = merkle.root_of(leaves)
    subtree = merkle.memory_subtrees(leaves)
    assert subtree(0, size) == root
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, subtree)
    merkle.verify_inclusion(index, size, leaves[index], proof, root)
    forged = merkle.leaf_hash(b"forged" + entries[index])
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, forged, proof, root)
    if size > 1:
        with pytest.raises(ProofError):
            merkle.verify_inclusion((index + 1) % size, size, leaves[index], proof, root)


@settings(max_examples=150, deadline=None)
@given(entries=leaves_strategy, data=st.data())
def test_every_consistency_proof_verifies_and_a_rewrite_fails(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    new_size = len(leaves)
    old_size = data.draw(st.integers(1, new_size))
    subtree = merkle.memory_subtrees(leaves)
    proof = merkle.consistency_proof(old_size, new_size, subtree)
    old_root, new_root = merkle.root_of(leaves[:old_size]), merkle.root_of(leaves)
    merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    # An old entry rewritten (or removed and replaced): the old root no longer follows.
    rewritten = list(leaves)
    rewritten[data.draw(st.integers(0, old_size - 1))] = merkle.leaf_hash(b"rewritten")
    with pytest.raises(ProofError):
        merkle.verify_consistency(
            old_size,
            new_size,
            old_root,
            merkle.root_of(rewritten),
            merkle.consistency_proof(old_size, new_size, merkle.memory_subtrees(rewritten)),
        )
