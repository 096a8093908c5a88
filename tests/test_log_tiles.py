"""The signature log as C2SP tlog-tiles (issue #20, optional part): static files a CDN can cache and standard
tooling can mirror. A tile reader written here from the spec alone (c2sp.org/tlog-tiles, RFC 6962 hashing with
hashlib; none of the project's code) reads the checkpoint, the hash tiles and the entry bundles, and rebuilds the
checkpoint's root from them."""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.core.runtime import Runtime
from app.log import service as signature_log
from app.log import tree
from app.log.verifier import encode
from tests import factories
from tests.test_log_counts import reader  # noqa: F401 (fixtures)

pytestmark = pytest.mark.one_database


class TileReader:
    """A tlog-tiles client from the spec: tiles of 256 hashes, level L hashing 256**L leaves each."""

    def __init__(self, get: Callable[[str], tuple[int, bytes]], prefix: str) -> None:
        self.get, self.prefix = get, prefix
        self.cache: dict[str, bytes] = {}  # tiles are immutable: a reader (or a CDN) fetches each once

    @staticmethod
    def index_path(n: int) -> str:
        parts: list[str] = []
        while True:
            parts.insert(0, f"{n % 1000:03d}")
            n //= 1000
            if n == 0:
                break
        return "/".join(["x" + part for part in parts[:-1]] + [parts[-1]])

    def fetch(self, kind: str, n: int, size: int, level: int) -> bytes:
        full_end = (n + 1) * 256 ** (level + 1)
        width = 256 if full_end <= size else (size // 256**level) % 256
        path = f"{self.prefix}/tile/{kind}/{self.index_path(n)}" + ("" if width == 256 else f".p/{width}")
        if path not in self.cache:
            status, body = self.get(path)
            assert status == 200, (path, status)
            self.cache[path] = body
        return self.cache[path]

    def checkpoint(self) -> tuple[str, int, bytes]:
        status, body = self.get(f"{self.prefix}/checkpoint")
        assert status == 200
        origin, size, root = body.decode().split("\n")[:3]
        return origin, int(size), base64.b64decode(root)

    def hashes(self, level: int, first: int, count: int, size: int) -> list[bytes]:
        """`count` consecutive hashes of tile level `level`, from the `first`."""
        out = []
        for position in range(first, first + count):
            tile = self.fetch(str(level), position // 256, size, level)
            offset = (position % 256) * 32
            out.append(tile[offset : offset + 32])
        return out

    def subtree(self, height: int, index: int, size: int) -> bytes:
        """MTH of the 2**height leaves from index * 2**height, from the tile level that holds them."""
        level = height // 8
        span = 2 ** (height - 8 * level)
        nodes = self.hashes(level, index * span, span, size)
        while len(nodes) > 1:
            nodes = [hashlib.sha256(b"\x01" + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes), 2)]
        return nodes[0]

    def root(self, size: int) -> bytes:
        parts, start = [], 0
        for height in range(size.bit_length() - 1, -1, -1):
            if size & (1 << height):
                parts.append(self.subtree(height, start >> height, size))
                start += 1 << height
        root = parts[-1]
        for part in reversed(parts[:-1]):
            root = hashlib.sha256(b"\x01" + part + root).digest()
        return root

    def entries(self, size: int) -> list[bytes]:
        found: list[bytes] = []
        for n in range((size + 255) // 256):
            bundle = self.fetch("entries", n, size, 0)
            at = 0
            while at < len(bundle):
                (length,) = struct.unpack(">H", bundle[at : at + 2])
                found.append(bundle[at + 2 : at + 2 + length])
                at += 2 + length
        return found


def named() -> dict[str, object]:
    return {"kind": "signature", "visibility": "named", "commitment": secrets.token_hex(16)}


def grown_log(
    db: Session, rt: Runtime, sessions: sessionmaker[Session], count: int, petition_id: int | None = None
) -> int:
    if petition_id is None:
        petition_id = factories.open_petition(db, rt).id
    for _ in range(count):
        signature_log.pend(db=db, petition_id=petition_id, entry=named())
    db.commit()
    assert signature_log.flush(sessions=sessions, rt=rt) == count
    return petition_id


@pytest.fixture
def tile_reader(reader: TestClient) -> Callable[[int], TileReader]:
    def get(path: str) -> tuple[int, bytes]:
        reader.cookies.clear()
        reply = reader.get(path)
        return reply.status_code, reply.content

    return lambda petition_id: TileReader(get, f"/api/v1/petitions/{petition_id}/log")


def test_an_independent_tile_reader_rebuilds_the_checkpoints_root(
    db: Session,
    rt: Runtime,
    sessions,
    reader,
    tile_reader,
) -> None:
    petition_id = grown_log(db, rt, sessions, 100)
    first = tile_reader(petition_id)
    origin, size, root = first.checkpoint()
    assert (origin, size) == (signature_log.origin(rt, petition_id), 101)
    assert first.root(size) == root
    # 300 entries: a full level-0 tile, a partial one of 44, and a partial level-1 tile of width 1.
    grown_log(db, rt, sessions, 199, petition_id)
    origin, size, root = first.checkpoint()
    assert size == 300 and first.root(size) == root
    entries = first.entries(size)
    assert len(entries) == 300
    leaves = first.hashes(0, 0, 300, size)
    assert [hashlib.sha256(b"\x00" + entry).digest() for entry in entries] == leaves
    # The older checkpoint's partial tile is still served, byte for byte a prefix of the newer tiles.
    assert first.fetch("0", 0, 101, 0) == b"".join(leaves[:101])
    reader.cookies.clear()
    reply = reader.get(f"/api/v1/petitions/{petition_id}/log/tile/0/000")
    assert reply.headers["content-type"] == "application/octet-stream"
    assert "immutable" in reply.headers["cache-control"]
    assert "set-cookie" not in reply.headers  # a CDN replays it to everyone: no one browser's seed in it
    assert reader.get(f"/api/v1/petitions/{petition_id}/log/checkpoint").headers["cache-control"] == "public, max-age=5"


def test_nothing_past_the_checkpoint_and_no_malformed_tile_is_served(
    db: Session,
    rt: Runtime,
    sessions,
    reader,
) -> None:
    petition_id = grown_log(db, rt, sessions, 10)  # 11 entries under the checkpoint
    base = f"/api/v1/petitions/{petition_id}/log/tile"
    assert reader.get(f"{base}/0/000.p/11").status_code == 200
    assert reader.get(f"{base}/entries/000.p/11").status_code == 200
    # A leaf appended without a checkpoint is not part of the signed log: no tile or bundle shows it.
    tree.append(db, petition_id, [encode(named())])
    db.commit()
    for path in ("0/000.p/12", "entries/000.p/12", "0/000", "entries/000", "1/000.p/1"):
        assert reader.get(f"{base}/{path}").status_code == 404, path
    for path in (
        "0/0",
        "0/0000",
        "0/x000/001",
        "0/000.p/0",
        "0/000.p/256",
        "64/000",
        "00/000",
        "level/000",
        "0/000.p/011",
    ):
        reply = reader.get(f"{base}/{path}")
        assert reply.status_code == 404 and reply.json()["error"]["message"], path
    # An index of thousands of elements (15003 digits, past what int() converts: it was a 500 with a traceback),
    # one past a uint64 (x018/x446/x744/x073/x709/x551/616 is 2**64), and one of eight elements: no such tile.
    for path in (
        "0/" + "x001/" * 5000 + "000",
        "entries/" + "x999/" * 5000 + "999.p/1",
        "0/x018/x446/x744/x073/x709/x551/616",
        "0/x001/x000/x000/x000/x000/x000/x000/000",
    ):
        reply = reader.get(f"{base}/{path}")
        assert reply.status_code == 404, (path[:40], reply.status_code)
        assert reply.json()["error"]["message"] == "There is no such tile.", path[:40]
    # The largest index a uint64 holds is read as one (and is beyond this log: no such tile, in other words).
    reply = reader.get(f"{base}/0/x018/x446/x744/x073/x709/x551/615")
    assert reply.status_code == 404 and "does not cover it" in reply.json()["error"]["message"]
    # A petition nobody may read yet serves no tiles.
    draft = factories.draft_petition(db, rt)
    assert reader.get(f"/api/v1/petitions/{draft.id}/log/checkpoint").status_code == 404
    assert reader.get(f"/api/v1/petitions/{draft.id}/log/tile/0/000.p/1").status_code == 404
