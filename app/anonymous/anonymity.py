"""The anonymity set: how many colleagues an anonymous action hides among, as anyone can count it.

For signing it is every account that held the petition's token and did not use it with a name:
tokens_issued - spent_by_name - forfeited (a withdrawn named signature keeps its token spent, so it never comes
back into the set; a member who forfeited their token to sign by name is no longer a possible anonymous signer).
The same figure is shown to everyone on the petition page and to the signer before an anonymous signature; below
the minimum group size k the signer is warned and asked to confirm.

For anonymous comments it is every account that collected the petition's discussion credential: commenting never
spends it, so each anonymous comment hides among all of them (the comment form shows it, with the same warning).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.runtime import Runtime
from app.models.anonymous import DiscussionKey, IssuingKey
from app.models.log import LogHead


@dataclass(frozen=True)
class AnonymitySet:
    # None when the petition takes no anonymous signatures.
    signing: int | None
    min_group_size: int
    # Of `signing`, how many have not signed anonymously yet, as counted (entries waiting for a batch are not).
    signing_left: int | None = None
    # Accounts that collected the discussion credential; None when the petition takes no anonymous comments.
    discussion: int | None = None

    @property
    def signing_below_k(self) -> bool:
        """Fewer token holders than k: an anonymous signer could be picked out by counting."""
        return self.signing is not None and self.signing < self.min_group_size

    @property
    def signing_warning(self) -> bool:
        """Warn before an anonymous signature: below k, or the signer may be the last holder left, so that
        counting would show every holder signed (issue 18, "Counting")."""
        return self.signing_below_k or (self.signing_left is not None and self.signing_left <= 1)

    def as_dict(self) -> dict[str, int | None]:
        """The public figures (the API's answer)."""
        return {"signing": self.signing, "discussion": self.discussion, "min_group_size": self.min_group_size}


@dataclass(frozen=True)
class Issued:
    """A signing key's issuance totals as published: the figures the petition's log has committed."""

    tokens_issued: int
    spent_by_name: int


def issued(key: IssuingKey, head: LogHead | None) -> Issued:
    """What everyone is told of `key`'s issuance: the totals of the log's last issuance entry, which the log head
    keeps (appended and signed in the batch that moves them), never the key row's live counters, which an
    operator could raise in the database to claim a larger anonymity set (issue #20): what is published is what
    the log commits, and `undersigned verify` holds every place to it. Smaller than or equal to the live figures,
    which only grow between batches: the cautious side.

    A log with no issuance entry yet (nothing issued when its last batch ran, or a log begun before the entries
    existed) has a head of 0 and 0, and then the live figures are published: there is nothing committed to show,
    and 0 would warn every signer in a petition's first minutes; the next batch commits them."""
    if head is not None and (head.tokens_issued or head.spent_by_name):
        return Issued(tokens_issued=head.tokens_issued, spent_by_name=head.spent_by_name)
    return Issued(tokens_issued=key.tokens_issued or 0, spent_by_name=key.spent_by_name or 0)


def issued_for(db: Session, key: IssuingKey) -> Issued:
    return issued(key, db.get(LogHead, key.petition_id))


def issued_for_all(db: Session, keys: Iterable[IssuingKey]) -> dict[int, Issued]:
    """`issued` of many keys, by petition, in one query (the published key list)."""
    keys = list(keys)
    heads = (
        {
            head.petition_id: head
            for head in db.scalars(select(LogHead).where(LogHead.petition_id.in_([key.petition_id for key in keys])))
        }
        if keys
        else {}
    )
    return {key.petition_id: issued(key, heads.get(key.petition_id)) for key in keys}


def signing_set(key: IssuingKey | None, head: LogHead | None = None) -> int | None:
    """Accounts that collected this petition's signing token and neither spent nor forfeited it by name: the
    issuance totals the log `head` commits (see `issued`), less the live forfeits, which only make it smaller."""
    if key is None:
        return None
    figures = issued(key, head)
    return max(figures.tokens_issued - figures.spent_by_name - (key.forfeited or 0), 0)


def for_petition(*, db: Session, rt: Runtime, petition_id: int, key: IssuingKey | None = None) -> AnonymitySet:
    """The petition's figures; pass the key row when the caller already loaded it (the petition page does)."""
    if key is None:
        key = db.get(IssuingKey, petition_id)
    signing = signing_set(key, db.get(LogHead, petition_id))
    left = None if key is None or signing is None else max(signing - key.anonymous_signatures, 0)
    discussion_key = db.get(DiscussionKey, petition_id) if key is not None else None
    return AnonymitySet(
        signing=signing,
        min_group_size=rt.settings.min_group_size,
        signing_left=left,
        discussion=discussion_key.tokens_issued if discussion_key is not None else None,
    )
