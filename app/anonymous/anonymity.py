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

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.anonymous.models import DiscussionKey, IssuingKey
from app.core.runtime import Runtime


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


def signing_set(key: IssuingKey | None) -> int | None:
    """Accounts that collected this petition's signing token and neither spent nor forfeited it by name."""
    if key is None:
        return None
    return max(key.tokens_issued - key.spent_by_name - (key.forfeited or 0), 0)  # None on a row not yet written


def for_petition(*, db: Session, rt: Runtime, petition_id: int, key: IssuingKey | None = None) -> AnonymitySet:
    """The petition's figures; pass the key row when the caller already loaded it (the petition page does)."""
    if key is None:
        key = db.get(IssuingKey, petition_id)
    signing = signing_set(key)
    left = None if key is None or signing is None else max(signing - key.anonymous_signatures, 0)
    discussion_key = db.get(DiscussionKey, petition_id) if key is not None else None
    return AnonymitySet(signing=signing, min_group_size=rt.settings.min_group_size, signing_left=left,
                        discussion=discussion_key.tokens_issued if discussion_key is not None else None)
