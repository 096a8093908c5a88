"""What the anonymous-signing surfaces accept and return.

Binary values in JSON travel as base64url (RFC 4648 section 5) without padding, in this API as in the signature
log's (app/routes/log_api.py): the tokens inside log entries and the wallet's own store use it, and it needs no escaping
in a URL. Padding ('=') is accepted on input, as app/core/b64url.py's decoder always allowed. The one exception
is C2SP text (checkpoints, signature lines, verifier keys), a format of its own that its specifications write in
standard base64."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.anonymous import anonymity, linking, wallet
from app.anonymous.service import decode, encode
from app.anonymous.wallet import Purpose
from app.core import b64url
from app.models.anonymous import IssuingKey
from app.models.ballots import Ballot
from app.models.signatures import Signature
from app.petitions.issuing_keys import BlindKey

B64, ON_INPUT = b64url.PATTERN, b64url.ON_INPUT


class TokenRead(BaseModel):
    """A finalized token: the message the wallet made up and the petition key's signature on it."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(
        min_length=43, max_length=700, pattern=B64, description=f"The token's message, 32-512 bytes, {ON_INPUT}."
    )
    signature: str = Field(
        min_length=1,
        max_length=1400,
        pattern=B64,
        description=f"The petition key's RSA-PSS signature on it, {ON_INPUT}.",
    )

    def decoded(self) -> tuple[bytes, bytes]:
        return decode(self.message, field="message"), decode(self.signature, field="signature")


class AnonymousSignatureCreate(TokenRead):
    petition_id: int = Field(ge=1, le=2**31 - 1)
    signer_blinded: str | None = Field(
        default=None,
        min_length=1,
        max_length=1400,
        pattern=B64,
        description=(
            "Optional: a blinded request (RFC 9474) for the petition's signer credential, under its signer key "
            f"(purpose `signer`), {ON_INPUT}. Proves the signature later, without saying which, to answer polls "
            "among the petition's signers."
        ),
    )


class Accepted(BaseModel):
    status: str = Field(description="Always `queued`: the signature is written with the next batch.")
    publish_within_seconds: float
    signer_blind_signature: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description=(
            "Only when `signer_blinded` was sent and the signature was written at once: the signer credential's "
            "blind signature, base64url without padding. Left out when the signature waits for a batch (the reply "
            "is kept with the signature: GET /api/v1/petitions/{petition_id}/signer-replies/{nullifier}), or when "
            "the petition hands out no signer credentials."
        ),
    )


class KeyRead(BaseModel):
    petition_id: int | None = Field(description="The petition; for a `ballot` key, the poll's petition or null.")
    # Only a poll's item names one: items of other purposes are as they were before polls.
    ballot_id: int | None = Field(
        default=None, exclude_if=lambda value: value is None, description="For purpose `ballot` only: the poll."
    )
    purpose: Purpose = Field(
        description=(
            "`sign`: the signing token's key; `discuss`: the discussion credential's; `signer`: the petition's signer "
            "credential's; `ballot`: the poll's own key."
        )
    )
    key_id: str = Field(description="SHA-256 (hex) of the exact SPKI bytes below.")
    spki: str = Field(description="The RSA public key, DER SubjectPublicKeyInfo, base64url without padding.")
    tokens_issued: int = Field(description="Credentials issued under this key (a poll's: its credentials_issued).")

    @classmethod
    def of(cls, key: BlindKey, purpose: Purpose = Purpose.sign, issued: anonymity.Issued | None = None) -> Self:
        """`key` as published; a signing key's tokens_issued is `issued`, what the log commits (the discussion
        key's count is in no log)."""
        return cls(
            petition_id=key.petition_id,
            purpose=purpose,
            key_id=key.key_id,
            spki=encode(key.spki),
            tokens_issued=issued.tokens_issued if issued is not None else key.tokens_issued,
        )

    @classmethod
    def of_ballot(cls, ballot: Ballot) -> Self:
        return cls(
            petition_id=ballot.petition_id,
            ballot_id=ballot.id,
            purpose=Purpose.ballot,
            key_id=ballot.key_id,
            spki=encode(ballot.spki),
            tokens_issued=ballot.credentials_issued,
        )


class BlindedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    petition_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="The petition (not for `ballot`).")
    ballot_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="For purpose `ballot`: the poll.")
    purpose: Purpose = Purpose.sign
    blinded_message: str = Field(
        min_length=1, max_length=1400, pattern=B64, description=f"The blinded message (RFC 9474), {ON_INPUT}."
    )

    @model_validator(mode="after")
    def _names_its_subject(self) -> Self:
        if self.purpose is Purpose.ballot and self.ballot_id is None:
            raise ValueError("a ballot credential's request names its poll: ballot_id")
        if self.purpose is not Purpose.ballot and self.petition_id is None:
            raise ValueError("this request names its petition: petition_id")
        return self

    @property
    def subject(self) -> int:
        subject = self.ballot_id if self.purpose is Purpose.ballot else self.petition_id
        assert subject is not None  # checked above
        return subject


class IssuanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[BlindedRequest] = Field(
        max_length=500,
        description=(
            "One blinded message for every (petition, purpose) in GET /api/v1/wallet's `due`, no more and no fewer."
        ),
    )


class IssuedRead(BaseModel):
    petition_id: int | None
    # Only a poll's item names one: items of other purposes are as they were before polls.
    ballot_id: int | None = Field(
        default=None, exclude_if=lambda value: value is None, description="For purpose `ballot` only: the poll."
    )
    purpose: Purpose
    key_id: str
    blind_signature: str = Field(description="The blind signature (RFC 9474), base64url without padding.")
    spki: str = Field(
        description="The key the reply is under (DER SubjectPublicKeyInfo, base64url without "
        "padding): a device that finalizes a kept reply checks it against the published "
        "one first."
    )

    @classmethod
    def of(cls, item: wallet.Issued) -> Self:
        return cls(
            petition_id=item.petition_id,
            ballot_id=item.ballot_id,
            purpose=item.purpose,
            key_id=item.key_id,
            blind_signature=encode(item.blind_signature),
            spki=encode(item.spki),
        )


class IssuanceRead(BaseModel):
    tokens: list[IssuedRead]


class WalletRead(BaseModel):
    due: list[KeyRead] = Field(description="The credentials you can be issued: ask for all of them at once.")
    issued: list[IssuedRead] = Field(
        description=(
            "The blind signatures already issued to you for open petitions (leaving out signing tokens spent or "
            "forfeited by a signature with your name), for a device of your wallet that did not receive them."
        )
    )
    wallet_check: str | None = Field(
        description=(
            "The check value of your wallet (16 bytes, base64url), derived from its secret, which the server never "
            "sees; null while no device has started your wallet. A device compares a recovery code's check with it."
        )
    )


class WalletCheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: str = Field(
        min_length=1,
        max_length=64,
        pattern=B64,
        description=(
            f"Your new wallet's check value (16 bytes, {ON_INPUT}), derived from its secret: never the secret."
        ),
    )


class WalletCheckRead(BaseModel):
    wallet_check: str = Field(description="The check value kept, base64url without padding.")


class EntryRead(BaseModel):
    id: str = Field(description="The entry's random id (hex), the cursor to page after it.")
    message: str = Field(description="The token's message, base64url without padding, as the log entry writes it.")
    signature: str = Field(description="The token's signature, base64url without padding, as the log entry writes it.")

    @classmethod
    def of(cls, entry: Signature) -> Self:
        return cls(
            id=entry.id,
            message=encode(entry.token_message or b""),
            signature=encode(entry.token_signature or b""),
        )


class AnonymousLedger(BaseModel):
    petition_id: int
    key_id: str = Field(description="SHA-256 (hex) of the key's SPKI bytes: the key_id entry 0 of the log commits.")
    spki: str = Field(
        description=("The petition's RSA public key, DER SubjectPublicKeyInfo, base64url without padding.")
    )
    tokens_issued: int
    key_destroyed_at: datetime | None
    spent_by_name: int = Field(
        description="Tokens spent by signatures with a name (withdrawing one does not free its token)."
    )
    forfeited: int = Field(
        default=0,
        description=(
            "Tokens given up by members who signed with a name without them (the token was on no device at hand). "
            "The server never saw those tokens, so this is also the most that dishonest forfeits could add."
        ),
    )
    anonymous_signatures: int = Field(
        description=(
            "Never more than tokens_issued - spent_by_name - forfeited while everyone is honest, and never more than "
            "tokens_issued - spent_by_name at all: anyone can check."
        )
    )
    entries: list[EntryRead]
    next_cursor: str | None

    @classmethod
    def of(
        cls,
        key: IssuingKey,
        *,
        issued: anonymity.Issued,
        anonymous_signatures: int,
        entries: list[Signature],
        next_cursor: str | None,
    ) -> Self:
        published = KeyRead.of(key, issued=issued)
        return cls(
            petition_id=published.petition_id,
            key_id=published.key_id,
            spki=published.spki,
            tokens_issued=published.tokens_issued,
            key_destroyed_at=key.destroyed_at,
            spent_by_name=issued.spent_by_name,
            forfeited=key.forfeited,
            anonymous_signatures=anonymous_signatures,
            entries=[EntryRead.of(entry) for entry in entries],
            next_cursor=next_cursor,
        )


class AnonymityRead(BaseModel):
    """The anonymity sets anyone can count for a petition (more figures join as anonymous features do)."""

    signing: int | None = Field(
        description="Accounts that collected the petition's signing token and neither "
        "spent nor forfeited it by name (tokens_issued - spent_by_name - "
        "forfeited): "
        "every anonymous signer "
        "hides among them. Null when the petition takes no anonymous "
        "signatures."
    )
    discussion: int | None = Field(
        default=None,
        description=(
            "Accounts that collected the petition's discussion credential: every anonymous comment hides among them "
            "(commenting does not spend it). Null when the petition takes no anonymous comments."
        ),
    )
    min_group_size: int = Field(description="k: below it, signers are warned before signing anonymously.")

    @classmethod
    def of(cls, figures: anonymity.AnonymitySet) -> Self:
        return cls(signing=figures.signing, discussion=figures.discussion, min_group_size=figures.min_group_size)


# -- linking a device (app/routes/anonymous_link_api.py) ----------------------------------------------------------

# Binary fields as the anonymous-signing API takes them (one pattern, one decoder: app/core/b64url.py); the
# lengths are the unpadded and padded spellings of each field's bytes.
KEY_FIELD = Field(
    min_length=87,
    max_length=88,
    pattern=B64,
    description=(f"An ephemeral P-256 public key, the 65-byte uncompressed point, {b64url.ON_INPUT}."),
)
PROOF_FIELD = Field(min_length=43, max_length=44, pattern=B64, description=f"HMAC-SHA256, 32 bytes, {b64url.ON_INPUT}.")


class OfferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_key: str = KEY_FIELD
    offer_proof: str = Field(
        min_length=43,
        max_length=44,
        pattern=B64,
        description="HMAC-SHA256(K_offer, offer_key): B checks it, the server cannot.",
    )
    code_proof: str = Field(
        min_length=43,
        max_length=44,
        pattern=B64,
        description="HMAC-SHA256(K_check, offer_key): what B's answer must repeat.",
    )


class AnswerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code_proof: str = PROOF_FIELD
    answer_key: str = KEY_FIELD
    answer_proof: str = Field(
        min_length=43,
        max_length=44,
        pattern=B64,
        description="HMAC-SHA256(K_answer, answer_key || offer_key): A checks it.",
    )


class SealedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sealed: str = Field(
        min_length=59,
        max_length=60,
        pattern=B64,
        description=(f"IV (12 bytes) || AES-256-GCM of the 16-byte wallet secret with its tag, {b64url.ON_INPUT}."),
    )


class Opened(BaseModel):
    expires_in: int = Field(description="Seconds until the session closes by itself.")

    @classmethod
    def of(cls, session: linking.LinkSession, now: datetime) -> Self:
        return cls(expires_in=session.expires_in(now))


class SessionRead(BaseModel):
    state: linking.State = Field(
        description=('"done" once, after the new device collected the secret: then nothing else is in the answer.')
    )
    offer_key: str | None = None
    offer_proof: str | None = None
    answer_key: str | None = None
    answer_proof: str | None = None
    sealed: str | None = None
    expires_in: int

    @classmethod
    def of(cls, session: linking.LinkSession, now: datetime) -> Self:
        """What each device needs from the other, as far as the session has come (answered without the nulls)."""

        def published(value: bytes | None) -> str | None:
            return encode(value) if value is not None else None

        return cls(
            state=session.state,
            offer_key=published(session.offer_key),
            offer_proof=published(session.offer_proof),
            answer_key=published(session.answer_key),
            answer_proof=published(session.answer_proof),
            sealed=published(session.sealed),
            expires_in=session.expires_in(now),
        )
