"""Each anonymous-enabled petition's issuing key: made when the petition opens, sealed at rest, destroyed when it
closes. Destruction is a public event on the petition's timeline: from then on nobody, operators included, can
make a token for it.

Every petition also gets a signer key (issue #25), anonymous-enabled or not, with the same life: signer credentials
prove a signature without naming it, for ballots among the petition's signers. And each ballot has a key of its
own (made by app/ballots/service.py); the wallet, which issues ballot credentials and sits below the ballots
feature, unseals it here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core import blindrsa
from app.core.runtime import Runtime
from app.log import service as signature_log
from app.models.anonymous import DiscussionKey, IssuingKey, SignerKey
from app.models.ballots import Ballot
from app.models.petitions import Petition, PetitionEvent


def context(petition_id: int) -> str:
    return f"issuing-key:{petition_id}"


def discussion_context(petition_id: int) -> str:
    return f"discussion-key:{petition_id}"


def signer_context(petition_id: int) -> str:
    return f"signer-key:{petition_id}"


BlindKey = IssuingKey | DiscussionKey | SignerKey


def _new_discussion_key(rt: Runtime, petition_id: int, now: datetime) -> DiscussionKey:
    private = blindrsa.PrivateKey.generate(rt.settings.blind_key_bits)
    return DiscussionKey(
        petition_id=petition_id,
        key_id=private.public.key_id(),
        spki=private.public.spki(),
        tokens_issued=0,
        created_at=now,
        destroyed_at=None,
        sealed_private=rt.sealer.seal(private.to_pem().decode(), context=discussion_context(petition_id)),
    )


def create_missing_discussion_keys(*, db: Session, rt: Runtime) -> int:
    """Discussion keys for petitions that opened before discussion credentials existed (the worker's round)."""
    petition_ids = list(
        db.scalars(
            select(IssuingKey.petition_id)
            .join(Petition, Petition.id == IssuingKey.petition_id)
            .where(
                Petition.state == "open",
                IssuingKey.sealed_private.is_not(None),
                ~select(DiscussionKey.petition_id).where(DiscussionKey.petition_id == IssuingKey.petition_id).exists(),
            )
        )
    )
    now = rt.clock.now()
    db.add_all(_new_discussion_key(rt, petition_id, now) for petition_id in petition_ids)
    db.flush()
    return len(petition_ids)


def _new_signer_key(rt: Runtime, petition_id: int, now: datetime) -> SignerKey:
    private = blindrsa.PrivateKey.generate(rt.settings.blind_key_bits)
    return SignerKey(
        petition_id=petition_id,
        key_id=private.public.key_id(),
        spki=private.public.spki(),
        tokens_issued=0,
        created_at=now,
        destroyed_at=None,
        sealed_private=rt.sealer.seal(private.to_pem().decode(), context=signer_context(petition_id)),
    )


def create_missing_signer_keys(*, db: Session, rt: Runtime) -> int:
    """Signer keys for open petitions that opened before signer credentials existed (the worker's round): their
    named signers can then collect one; anonymous signatures made before cannot get one any more."""
    petition_ids = list(
        db.scalars(
            select(Petition.id).where(
                Petition.state == "open",
                ~select(SignerKey.petition_id).where(SignerKey.petition_id == Petition.id).exists(),
            )
        )
    )
    now = rt.clock.now()
    db.add_all(_new_signer_key(rt, petition_id, now) for petition_id in petition_ids)
    db.flush()
    return len(petition_ids)


def create_for(*, db: Session, rt: Runtime, petition: Petition, now: datetime) -> IssuingKey | None:
    """New keys for a petition (never reused): its signer key, and when it allows anonymity, the signing key and
    the discussion key its anonymous comments' credentials are made with."""
    if db.get(SignerKey, petition.id) is None:
        db.add(_new_signer_key(rt, petition.id, now))
    if not petition.allow_anonymous or db.get(IssuingKey, petition.id) is not None:
        db.flush()
        return None
    private = blindrsa.PrivateKey.generate(rt.settings.blind_key_bits)
    key = IssuingKey(
        petition_id=petition.id,
        key_id=private.public.key_id(),
        spki=private.public.spki(),
        sealed_private=rt.sealer.seal(private.to_pem().decode(), context=context(petition.id)),
        tokens_issued=0,
        anonymous_signatures=0,
        created_at=now,
        destroyed_at=None,
    )
    db.add(key)
    if db.get(DiscussionKey, petition.id) is None:
        db.add(_new_discussion_key(rt, petition.id, now))
    db.flush()
    return key


def destroy_for(*, db: Session, petition: Petition, now: datetime) -> bool:
    """Erase the private key; the public half, its id and the count of tokens issued stay published."""
    destroyed_key = db.execute(
        update(IssuingKey)
        .where(IssuingKey.petition_id == petition.id, IssuingKey.sealed_private.is_not(None))
        .values(sealed_private=None, destroyed_at=now)
        .returning(IssuingKey.key_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    destroyed = destroyed_key is not None
    db.execute(
        update(DiscussionKey)
        .where(DiscussionKey.petition_id == petition.id, DiscussionKey.sealed_private.is_not(None))
        .values(sealed_private=None, destroyed_at=now)
        .execution_options(synchronize_session=False)
    )
    _discussion_signers.forget(petition.id)
    # The signer key's public half stays: credentials issued while the petition was open still verify for a
    # ballot among its signers opened later, but no new one can be made.
    db.execute(
        update(SignerKey)
        .where(SignerKey.petition_id == petition.id, SignerKey.sealed_private.is_not(None))
        .values(sealed_private=None, destroyed_at=now)
        .execution_options(synchronize_session=False)
    )
    _signer_key_signers.forget(petition.id)
    if destroyed:
        signature_log.pend(db=db, petition_id=petition.id, entry={"kind": "key_destroyed", "key_id": destroyed_key})
        _signers.forget(petition.id)
        db.add(
            PetitionEvent(
                petition_id=petition.id,
                kind="issuing_key_destroyed",
                at=now,
                actor_id=None,
                detail="Anonymous-signing key destroyed: no new tokens can be made for this petition.",
                public=True,
            )
        )
    return bool(destroyed)


def published(*, db: Session, petition_id: int) -> IssuingKey | None:
    return db.get(IssuingKey, petition_id)


class _SignerCache:
    """Unsealing and parsing a key costs about a millisecond; issuance signs with it often."""

    def __init__(self, sealing_context: Callable[[int], str] = context) -> None:
        self._signers: dict[int, tuple[str, blindrsa.Signer]] = {}
        self._lock = threading.Lock()
        self._context = sealing_context

    def get(self, key: BlindKey, rt: Runtime) -> blindrsa.Signer:
        if key.sealed_private is None:  # destroyed, perhaps by another process: drop this one's copy too
            self.forget(key.petition_id)
            raise LookupError("the key was destroyed")
        known = self._signers.get(key.petition_id)
        if known is not None and known[0] == key.key_id:
            return known[1]
        pem = rt.sealer.open(key.sealed_private, context=self._context(key.petition_id)).encode()
        signer = blindrsa.Signer(blindrsa.PrivateKey.from_pem(pem, sealed_by_us=True), pem=pem)
        with self._lock:
            self._signers[key.petition_id] = (key.key_id, signer)
        return signer

    def forget(self, petition_id: int) -> None:
        with self._lock:
            self._signers.pop(petition_id, None)


_signers = _SignerCache()
_discussion_signers = _SignerCache(discussion_context)
_signer_key_signers = _SignerCache(signer_context)


def signer_for(*, key: BlindKey, rt: Runtime) -> blindrsa.Signer:
    if isinstance(key, SignerKey):
        return _signer_key_signers.get(key, rt)
    return (_discussion_signers if isinstance(key, DiscussionKey) else _signers).get(key, rt)


class _BallotSigners:
    """Ballot keys unsealed, by key id (a ballot's row id may not exist yet when its key is made)."""

    def __init__(self) -> None:
        self._signers: dict[str, blindrsa.Signer] = {}
        self._lock = threading.Lock()

    def get(self, ballot: Ballot, rt: Runtime) -> blindrsa.Signer:
        if ballot.sealed_private is None:
            self.forget(ballot.key_id)
            raise LookupError("the key was destroyed")
        known = self._signers.get(ballot.key_id)
        if known is not None:
            return known
        pem = rt.sealer.open(ballot.sealed_private, context=ballot.sealing_context).encode()
        signer = blindrsa.Signer(blindrsa.PrivateKey.from_pem(pem, sealed_by_us=True), pem=pem)
        with self._lock:
            self._signers[ballot.key_id] = signer
        return signer

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._signers.pop(key_id, None)


_ballot_signers = _BallotSigners()


def ballot_signer(*, ballot: Ballot, rt: Runtime) -> blindrsa.Signer:
    """The blind signer of a ballot's key, for the wallet's issuance; LookupError once the key is destroyed."""
    return _ballot_signers.get(ballot, rt)


def forget_ballot_signer(key_id: str) -> None:
    """Drop a ballot's signer from this process's memory (its key was just erased)."""
    _ballot_signers.forget(key_id)


LiveKey = TypeVar("LiveKey", IssuingKey, DiscussionKey, SignerKey)


def _live_keys(db: Session, model: type[LiveKey]) -> list[LiveKey]:
    """The live keys of one kind, of open petitions, by petition."""
    return list(
        db.scalars(
            select(model)
            .join(Petition, Petition.id == model.petition_id)
            .where(Petition.state == "open", model.sealed_private.is_not(None))
            .order_by(model.petition_id)
        )
    )


def open_signer_keys(*, db: Session) -> list[SignerKey]:
    """The live signer keys of open petitions."""
    return _live_keys(db, SignerKey)


def open_keys(*, db: Session) -> list[IssuingKey]:
    """The live keys of open petitions: what a wallet needs to ask for tokens."""
    return _live_keys(db, IssuingKey)


def open_discussion_keys(*, db: Session) -> list[DiscussionKey]:
    """The live discussion keys of open petitions."""
    return _live_keys(db, DiscussionKey)
