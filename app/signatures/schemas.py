"""What the signing surfaces accept and return."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, Field

from app.anonymous.schemas import TokenRead
from app.models.petitions import Petition
from app.models.signatures import GroupKind, Signature, Visibility


class SignRequest(BaseModel):
    visibility: str = Field(
        max_length=16,
        examples=["organizers"],
        description="`public` (name shown to everyone) or `organizers` (name shown to the "
        "petition's organizers only, stored encrypted).",
    )
    notify_updates: bool = False
    department_id: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="From /api/v1/signer-groups, when the petition collects departments.",
    )
    location_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="From /api/v1/signer-groups.")
    token: TokenRead | None = Field(
        default=None,
        description=(
            "Your anonymous-signing token for this petition, required once one was issued to you: signing with a name "
            "spends it, so it cannot also be used anonymously."
        ),
    )
    forfeit: bool = Field(
        default=False,
        description=(
            "In place of the token, when it is on no device at hand: sign with your name and give up signing this "
            "petition anonymously. The server burns your token's issuance and publishes the forfeit (a counted log "
            "entry naming nobody). A token sent along wins: it is spent and nothing is given up. Without an issued, "
            "unspent token this is an ordinary signature with a name."
        ),
    )


class SignerGroupRead(BaseModel):
    id: int
    kind: GroupKind
    name: str


class SignatureRead(BaseModel):
    petition_id: int
    visibility: Visibility
    signed_on: datetime
    notify_updates: bool
    signature_count: int
    log_index: int | None = Field(
        default=None,
        description=("Your receipt: the signature's leaf in the petition's log, once a batch has appended it."),
    )
    leaf_hash: str | None = Field(
        default=None,
        description=(
            "Your receipt's RFC 9162 leaf hash, SHA-256(0x00 || entry bytes), hex: the value the log's inclusion "
            "proofs (GET .../log/inclusion?index=log_index) lead from, not a hash of the entry alone."
        ),
    )

    @classmethod
    def of(cls, signature: Signature, petition: Petition, *, leaf: bytes | None = None) -> Self:
        """`signature` with its receipt: its place in the log and its leaf hash, once a batch appended it."""
        return cls(
            petition_id=petition.id,
            visibility=signature.visibility,
            signed_on=signature.signed_hour,
            notify_updates=signature.notify_updates,
            signature_count=petition.signature_count,
            log_index=signature.log_index,
            leaf_hash=leaf.hex() if leaf else None,
        )


class SignerRead(BaseModel):
    name: str
    visibility: Visibility
