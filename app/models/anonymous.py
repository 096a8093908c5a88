"""Anonymous signing: each petition's issuing key, who was issued a token (never what they did with it), and
the tokens spent.

Nothing here links a spent token to an account: issuance rows name the account and petition (and the day),
spent rows name the petition and a hash of the token's message. The blind signature is what keeps those two
apart: the issuer never saw the message it signed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class IssuingKey(Base):
    """A petition's RSA key for blind signatures: created at opening, destroyed at closing."""

    __tablename__ = "issuing_keys"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    # SHA-256 of the exact published SPKI bytes (hex).
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    spki: Mapped[bytes] = mapped_column(LargeBinary)
    # The private key as PKCS#8 PEM, sealed with AES-GCM under the key-encryption key; NULL once destroyed.
    sealed_private: Mapped[bytes | None] = mapped_column(LargeBinary)
    tokens_issued: Mapped[int] = mapped_column(Integer, default=0)
    # Anonymous signatures written (a counter, moved by each batch): the public check against tokens_issued.
    anonymous_signatures: Mapped[int] = mapped_column(Integer, default=0)
    # Issued tokens spent with a name (moved when a named signature redeems one; a withdrawal does not move it
    # back): anyone can check anonymous_signatures <= tokens_issued - spent_by_name.
    spent_by_name: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Issued tokens given up by a signature with a name that did not carry the token (the worker had it on no
    # device at hand): the issuance is burned, and the honest bound is anonymous_signatures <= tokens_issued -
    # spent_by_name - forfeited. The server cannot see whether a forfeited token is used anyway, so this count is
    # also the most such dishonest forfeits could add. It names nobody and dates nothing.
    forfeited: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]


class TokenIssuance(Base):
    """Account A was issued its token for petition P, on that day: one per account per petition."""

    __tablename__ = "token_issuances"

    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    issued_on: Mapped[date] = mapped_column(Date)
    # The issuer's reply, kept so a wallet whose page closed before the reply arrived can still collect it. It is
    # the blinded signature: without the browser's secret blinding factor it matches no published token.
    blind_signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The account's right to sign this petition anonymously was used by a signature with its name, and stays
    # used after a withdrawal: it may sign again with its name, never anonymously. It names no token. (A member
    # who signed with a name before holding a token and withdrew gets a row with no blind signature, burned, so
    # no token is issued to them afterwards; tokens_issued does not count it.)
    burned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SpentToken(Base):
    """A token used to sign (anonymously or with a name): SHA-256 of its message, so it is never used twice."""

    __tablename__ = "spent_tokens"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    nullifier: Mapped[str] = mapped_column(String(64), primary_key=True)


class DiscussionKey(Base):
    """A petition's second blind-signing key, for discussion credentials: a credential authorises anonymous
    comments under a pseudonym derived from it, and is never spent, so commenting does not use up the right to
    sign. A separate key, because a blind signer cannot see what it signs: one key for both would let a member
    turn a discussion credential into a second signing token."""

    __tablename__ = "discussion_keys"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    spki: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private: Mapped[bytes | None] = mapped_column(LargeBinary)
    tokens_issued: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]


class DiscussionIssuance(Base):
    """Account A was issued its discussion credential for petition P, on that day (the blind reply kept, as for
    signing tokens, so any device of the wallet can collect it again)."""

    __tablename__ = "discussion_issuances"

    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    issued_on: Mapped[date] = mapped_column(Date)
    blind_signature: Mapped[bytes | None] = mapped_column(LargeBinary)


class WalletCheck(Base):
    """Account A has started a wallet: the check value derived from its secret (app/anonymous/derive.py), so a
    device can tell its recovery code from another account's, and the day it was started. The secret itself
    never reaches the server, and the check opens nothing (HKDF is one-way). Deleted with the account."""

    __tablename__ = "wallet_checks"

    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    check: Mapped[bytes] = mapped_column(LargeBinary)
    started_on: Mapped[date] = mapped_column(Date)


class SignerKey(Base):
    """A petition's blind-signing key for signer credentials (issue #25): a signer credential proves "I signed
    this petition" without saying which signature, and is exchanged for the credential of a ballot among the
    petition's signers. Made when the petition opens (every petition: named signers answer such ballots too),
    its private half destroyed when it closes; the public half stays, so a credential issued while it was open
    still verifies for a ballot opened after. A key of its own, so no signing token or discussion credential can
    pass for a signer credential (a blind signer cannot see what it signs)."""

    __tablename__ = "signer_keys"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    spki: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Signer credentials blind-signed: anyone can check it never exceeds the signatures the petition received.
    tokens_issued: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]


class SignerIssuance(Base):
    """Account A, which signed petition P with its name, was issued its signer credential, on that day (the blind
    reply kept, so any device of the wallet can collect it again)."""

    __tablename__ = "signer_issuances"

    account_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    issued_on: Mapped[date] = mapped_column(Date)
    blind_signature: Mapped[bytes | None] = mapped_column(LargeBinary)


class SignerReply(Base):
    """The signer credential blind-signed for an anonymous signature, kept under its token's nullifier (public in
    the signature log already) so another device of the wallet can fetch it: without the wallet's blinding
    factor it matches no credential. No account, no time; written by the batch that wrote the signature."""

    __tablename__ = "signer_replies"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    nullifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    blind_signature: Mapped[bytes] = mapped_column(LargeBinary)
