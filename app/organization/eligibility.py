"""Who may sign: a confirmed address of an allowed domain and, when an admin imported one, on the list.

The list keeps only keyed hashes of the addresses: a dump of it is not a staff directory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.orm import Session

from app.core.errors import Forbidden, InvalidInput
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.organization import EligibleAddress
from app.organization import service as organization

MAX_IMPORT_BYTES = 5 * 1024 * 1024
ADDRESS = re.compile(r"[^@\s]+@[a-z0-9.-]+\.[a-z]{2,}")
BATCH = 1000


def _digest(rt: Runtime, email: str) -> str:
    return rt.keyring.keyed_hash("eligible-address", email.strip().lower())


def list_size(*, db: Session) -> int:
    return db.scalar(select(func.count()).select_from(EligibleAddress)) or 0


def eligible_members(*, db: Session, rt: Runtime) -> int | None:
    """The member count that percentage thresholds use: the setting, else the imported list's size."""
    return rt.settings.eligible_members or list_size(db=db) or None


LIST_PRESENT = "eligibility-list-present"
# Other server processes see an import or a clearing within this many seconds; this one at once.
LIST_PRESENT_TTL = 10.0


def _list_present(db: Session, rt: Runtime) -> bool:
    """Whether a list was imported, remembered briefly so the sign path usually skips the query."""
    return rt.cache.get(
        LIST_PRESENT,
        lambda: bool(db.scalar(select(exists().where(EligibleAddress.digest.is_not(None))))),
        ttl=LIST_PRESENT_TTL,
    )


def require_eligible(*, db: Session, rt: Runtime, user: User) -> None:
    if not user.is_verified:
        raise Forbidden(N_("Please confirm your email address first: enter the code we sent you."))
    domain = user.email.rpartition("@")[2]
    allowed = organization.current(db=db, rt=rt).allowed_email_domains
    if domain not in allowed:
        raise Forbidden(
            Message(N_("Only members with an address at %(domains)s can sign."), domains=" or ".join(allowed))
        )
    if _list_present(db, rt) and db.get(EligibleAddress, _digest(rt, user.email)) is None:
        raise Forbidden(
            "Your address is not on the list of members who can sign. If you think it should be, "
            "ask an admin of Undersigned."
        )


def eligible_among(*, db: Session, rt: Runtime, users: Sequence[User]) -> set[int]:
    """The ids of those among `users` whom the rules of `require_eligible` let take part now, read in one query at
    most (the jobs round checks hundreds of accounts a batch; one look-up each was a query each)."""
    allowed = set(organization.current(db=db, rt=rt).allowed_email_domains)
    candidates = [user for user in users if user.is_verified and user.email.rpartition("@")[2] in allowed]
    if not candidates or not _list_present(db, rt):
        return {user.id for user in candidates}
    digests = {user.id: _digest(rt, user.email) for user in candidates}
    listed = set(db.scalars(select(EligibleAddress.digest).where(EligibleAddress.digest.in_(digests.values()))))
    return {user_id for user_id, digest in digests.items() if digest in listed}


def parse_addresses(*, db: Session, rt: Runtime, raw: bytes) -> set[str]:
    """Addresses from a CSV file: any column holding an address of an allowed domain counts."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidInput(N_("That file is too large."), fields={"file": N_("Use a CSV file of at most 5 MB.")})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            N_("That file is not text."), fields={"file": N_("Upload a CSV file saved as UTF-8.")}
        ) from None
    allowed = organization.current(db=db, rt=rt).allowed_email_domains
    addresses = set()
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            # A cell may hold more than the address (exports separated by semicolons, "Name <address>").
            for token in re.split(r"[\s;,<>\"']+", cell.lower()):
                if ADDRESS.fullmatch(token) and token.rpartition("@")[2] in allowed:
                    addresses.add(token)
    if not addresses:
        raise InvalidInput(
            N_("No addresses found."),
            fields={"file": Message(N_("The file holds no address at %(domains)s."), domains=" or ".join(allowed))},
        )
    return addresses


def replace_list(*, db: Session, rt: Runtime, addresses: set[str]) -> int:
    """Replace the eligibility list in one transaction; returns its new size."""
    now = rt.clock.now()
    db.execute(delete(EligibleAddress))
    digests = sorted({_digest(rt, address) for address in addresses})
    for start in range(0, len(digests), BATCH):
        db.execute(
            insert(EligibleAddress),
            [{"digest": digest, "imported_at": now} for digest in digests[start : start + BATCH]],
        )
    rt.cache.forget(LIST_PRESENT)
    return len(digests)


def clear_list(*, db: Session, rt: Runtime) -> None:
    db.execute(delete(EligibleAddress))
    rt.cache.forget(LIST_PRESENT)
