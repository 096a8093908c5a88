"""What the signature log's API returns, and the one thing it accepts (a witness's cosignature).

Binary values travel as base64url without padding; checkpoints, signature lines and verifier keys are C2SP text
in standard base64 (app/routes/log_api.py says why)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field

from app.models.log import LogCosignature


class LogRead(BaseModel):
    origin: str
    log_key: str = Field(
        description="The log's verifier key (C2SP signed note): name+keyid+base64key, in "
        "standard base64 as the note format writes it."
    )
    size: int
    root: str = Field(description="The latest checkpoint's SHA-256 root hash (RFC 9162), base64url without padding.")
    checkpoint: str = Field(
        description="The latest checkpoint, a C2SP signed note (standard base64 inside) with any witness cosignatures."
    )
    witnesses: list[str] = Field(description="Witnesses who cosigned the latest checkpoint.")
    witness_keys: list[str] = Field(
        description=(
            "The verifier keys (name+keyid+base64key, C2SP signed note; type 0x04 for cosignature/v1) of the witnesses "
            "the deployment is configured with. The browser wallet requires a cosignature from each before it accepts "
            "a key, and pins the set per petition: a later answer that drops one is refused."
        )
    )
    issuing_key: dict[str, object] | None = Field(
        description=(
            "The anonymous-signing key entry 0 commits to (key_id, hex; spki, DER SubjectPublicKeyInfo, base64url "
            "without padding), with its counts as they stand now (the log commits issuance totals with each batch)."
        )
    )
    counts: dict[str, int | None] = Field(
        description=(
            "What the entries up to the latest checkpoint add up to: signatures, withdrawals, tally, anonymous, "
            "forfeits, and the last issuance entry's tokens_issued and spent_by_name (null before the first). "
            "`undersigned verify` recomputes each from the entries."
        )
    )
    waiting: dict[str, int] = Field(
        description=(
            "What the figures shown now hold beyond the latest checkpoint, appended with the next batch: signatures, "
            "anonymous (of those), withdrawals, forfeits. The petition's signature_count is counts.tally + "
            "waiting.signatures - waiting.withdrawals."
        )
    )


class EntryRead(BaseModel):
    index: int
    entry: str = Field(description="The entry's canonical JSON bytes (the leaf's input), base64url without padding.")


class EntriesRead(BaseModel):
    size: int
    entries: list[EntryRead]


class CheckpointsRead(BaseModel):
    checkpoints: list[str]


class InclusionRead(BaseModel):
    index: int
    size: int
    proof: list[str] = Field(
        description="Hashes from the leaf's sibling up (RFC 9162 2.1.3), base64url without padding."
    )


class ConsistencyRead(BaseModel):
    old: int
    new: int
    proof: list[str] = Field(description="Hashes (RFC 9162 2.1.4), base64url without padding.")


class CosignatureCreate(BaseModel):
    size: int = Field(ge=1, le=2**31 - 1)
    line: str = Field(
        min_length=10,
        max_length=300,
        description=(
            "One C2SP signature line, '— name base64(keyid || timestamp || signature)' (tlog-cosignature "
            "cosignature/v1), or a plain Ed25519 note signature '— name base64(keyid || signature)'."
        ),
    )


class CosignatureRead(BaseModel):
    witness: str = Field(description="The configured witness whose cosignature was kept.")
    size: int = Field(description="The size of the checkpoint it cosigned.")

    @classmethod
    def of(cls, row: LogCosignature) -> Self:
        return cls(witness=row.witness, size=row.size)
