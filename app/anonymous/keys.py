"""Each anonymous-enabled petition's issuing key: made when the petition opens, sealed at rest, destroyed when it
closes. Destruction is a public event on the petition's timeline: from then on nobody, operators included, can
make a token for it."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.anonymous.models import IssuingKey
from app.core import blindrsa
from app.log import service as signature_log
from app.core.runtime import Runtime
from app.petitions.models import Petition, PetitionEvent


def context(petition_id: int) -> str:
    return f"issuing-key:{petition_id}"


def create_for(*, db: Session, rt: Runtime, petition: Petition, now: datetime) -> IssuingKey | None:
    """A new key for a petition that allows anonymity and has none yet (one key per petition, never reused)."""
    if not petition.allow_anonymous or db.get(IssuingKey, petition.id) is not None:
        return None
    private = blindrsa.PrivateKey.generate(rt.settings.blind_key_bits)
    key = IssuingKey(petition_id=petition.id, key_id=private.public.key_id(), spki=private.public.spki(),
                     sealed_private=rt.sealer.seal(private.to_pem().decode(), context=context(petition.id)),
                     tokens_issued=0, anonymous_signatures=0, created_at=now, destroyed_at=None)
    db.add(key)
    db.flush()
    return key


def destroy_for(*, db: Session, petition: Petition, now: datetime) -> bool:
    """Erase the private key; the public half, its id and the count of tokens issued stay published."""
    destroyed_key = db.execute(update(IssuingKey).where(IssuingKey.petition_id == petition.id,
                                                        IssuingKey.sealed_private.is_not(None))
                               .values(sealed_private=None, destroyed_at=now).returning(IssuingKey.key_id)
                               .execution_options(synchronize_session=False)).scalar_one_or_none()
    destroyed = destroyed_key is not None
    if destroyed:
        signature_log.pend(db=db, petition_id=petition.id, entry={"kind": "key_destroyed", "key_id": destroyed_key})
        _signers.forget(petition.id)
        db.add(PetitionEvent(petition_id=petition.id, kind="issuing_key_destroyed", at=now, actor_id=None,
                             detail="Anonymous-signing key destroyed: no new tokens can be made for this petition.",
                             public=True))
    return bool(destroyed)


def published(*, db: Session, petition_id: int) -> IssuingKey | None:
    return db.get(IssuingKey, petition_id)


class _SignerCache:
    """Unsealing and parsing a key costs about a millisecond; issuance signs with it often."""

    def __init__(self) -> None:
        self._signers: dict[int, tuple[str, blindrsa.Signer]] = {}
        self._lock = threading.Lock()

    def get(self, key: IssuingKey, rt: Runtime) -> blindrsa.Signer:
        if key.sealed_private is None:  # destroyed, perhaps by another process: drop this one's copy too
            self.forget(key.petition_id)
            raise LookupError("the key was destroyed")
        known = self._signers.get(key.petition_id)
        if known is not None and known[0] == key.key_id:
            return known[1]
        pem = rt.sealer.open(key.sealed_private, context=context(key.petition_id)).encode()
        signer = blindrsa.Signer(blindrsa.PrivateKey.from_pem(pem, sealed_by_us=True), pem=pem)
        with self._lock:
            self._signers[key.petition_id] = (key.key_id, signer)
        return signer

    def forget(self, petition_id: int) -> None:
        with self._lock:
            self._signers.pop(petition_id, None)


_signers = _SignerCache()


def signer_for(*, key: IssuingKey, rt: Runtime) -> blindrsa.Signer:
    return _signers.get(key, rt)


def open_keys(*, db: Session) -> list[IssuingKey]:
    """The live keys of open petitions: what a wallet needs to ask for tokens."""
    return list(db.scalars(select(IssuingKey).join(Petition, Petition.id == IssuingKey.petition_id)
                           .where(Petition.state == "open", IssuingKey.sealed_private.is_not(None))
                           .order_by(IssuingKey.petition_id)))
