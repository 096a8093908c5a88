"""Petition rules, in parts along their seams; callers use them through this package
(`from app.petitions import service as petitions`).

- `events`: the one place a state changes, and the timeline;
- `reading`: loading petitions (who may read which, closing on read) and the lists beside them;
- `drafting`: categories, drafts and corrections;
- `publishing`: sponsors and opening;
- `closing`: closing, on read past the deadline and by the periodic job;
- `organizers`: co-organizers, updates to signers, followers.
"""

from app.petitions.service.closing import close, close_expired, close_if_expired
from app.petitions.service.drafting import (
    MAX_DEADLINE_DAYS,
    add_category,
    categories,
    content_hash,
    correct_text,
    create_draft,
    draft_checks,
    require_draft,
    toggle_category,
    update_draft,
)
from app.petitions.service.events import EVENT_FOR_STATE, S, record_event, transition
from app.petitions.service.organizers import (
    INVITATION_DAYS,
    INVITATION_RULE,
    MAX_ORGANIZERS,
    TOO_MANY_ORGANIZERS,
    accept_organizer_invitation,
    add_organizer,
    follow,
    invite_organizer,
    organizer_invitation,
    post_update,
    remove_organizer,
    unfollow,
)
from app.petitions.service.publishing import (
    advance_sponsored,
    check_sponsor_token,
    open_petition,
    response_threshold,
    sponsor,
    sponsor_token,
    sponsor_url,
    submit_for_sponsors,
)
from app.petitions.service.reading import (
    get_for_signing,
    get_or_404,
    get_readable,
    get_readable_on,
    is_following,
    is_organizer,
    next_threshold,
    organizer_accounts,
    readable_by_anyone,
    sponsors,
    timeline,
    updates,
    versions,
)

__all__ = [
    "EVENT_FOR_STATE",
    "INVITATION_DAYS",
    "INVITATION_RULE",
    "MAX_DEADLINE_DAYS",
    "MAX_ORGANIZERS",
    "TOO_MANY_ORGANIZERS",
    "S",
    "accept_organizer_invitation",
    "add_category",
    "add_organizer",
    "advance_sponsored",
    "categories",
    "check_sponsor_token",
    "close",
    "close_expired",
    "close_if_expired",
    "content_hash",
    "correct_text",
    "create_draft",
    "draft_checks",
    "follow",
    "get_for_signing",
    "get_or_404",
    "get_readable",
    "get_readable_on",
    "invite_organizer",
    "is_following",
    "is_organizer",
    "next_threshold",
    "open_petition",
    "organizer_accounts",
    "organizer_invitation",
    "post_update",
    "readable_by_anyone",
    "record_event",
    "remove_organizer",
    "require_draft",
    "response_threshold",
    "sponsor",
    "sponsor_token",
    "sponsor_url",
    "sponsors",
    "submit_for_sponsors",
    "timeline",
    "toggle_category",
    "transition",
    "unfollow",
    "update_draft",
    "updates",
    "versions",
]
