"""Which mail a person can turn off, by kind and petition, and which they cannot (and why)."""

from __future__ import annotations

from enum import StrEnum

from app.core.i18n import N_


class MailKind(StrEnum):
    # Per petition, for its followers, the named signers who asked, and its organizers.
    news = "news"
    # Per petition, for its organizers: its way through sponsors and moderation, thresholds, follow-ups.
    organizing = "organizing"
    # Per petition, for its organizers: the daily digest of new discussions.
    digest = "digest"
    # Per petition, for leadership's responders: due dates, reminders, escalations, follow-up requests.
    responding = "responding"
    # The whole account: replies to comments posted by name (the account's "Replies to my comments").
    replies = "replies"
    # The whole account: a poll put to this account has opened (issue #25). Not per petition: a pulse poll has
    # none, and one switch is what a person looking for "stop telling me about polls" expects.
    polls = "polls"


# Kinds turned off for the whole account, not per petition: their links name no petition.
ACCOUNT_KINDS = frozenset({MailKind.replies, MailKind.polls})


TEMPLATE_KINDS: dict[str, MailKind] = {
    "petition_update": MailKind.news,
    "petition_corrected": MailKind.news,
    "response_posted": MailKind.news,
    "commitment_updated": MailKind.news,
    "petition_in_moderation": MailKind.organizing,
    "petition_opened": MailKind.organizing,
    "petition_rejected": MailKind.organizing,
    "petition_hidden": MailKind.organizing,
    "petition_closed": MailKind.organizing,
    "threshold_reached": MailKind.organizing,
    "organizer_added": MailKind.organizing,
    "follow_up_asked": MailKind.organizing,
    "comment_digest": MailKind.digest,
    "response_due": MailKind.responding,
    "escalation_reached": MailKind.responding,
    "reminder_soon": MailKind.responding,
    "reminder_due": MailKind.responding,
    "follow_up_requested": MailKind.responding,
    "comment_reply": MailKind.replies,
    "ballot_opened": MailKind.polls,
}

# What the footer says instead of a link, for mail nobody can turn off: no header either (RFC 8058 is for
# mail a person subscribed to; these answer what someone did, once).
ACCOUNT_SECURITY = N_("This email is about your account and its security, so it cannot be turned off.")
REQUEST_ANSWER = N_(
    "This email answers a request made with this address, so it cannot be turned off; "
    "nothing else comes unless you sign up."
)
ONE_INVITATION = N_("A colleague invited you: this email comes once, and cannot be turned off.")
ESSENTIAL: dict[str, str] = {
    "sign_in_link": ACCOUNT_SECURITY,
    "reset_password": ACCOUNT_SECURITY,
    "verify_email": ACCOUNT_SECURITY,
    "verify_notification_email": ACCOUNT_SECURITY,
    "account_exists": ACCOUNT_SECURITY,
    "sign_in_failures": ACCOUNT_SECURITY,
    "no_account": REQUEST_ANSWER,
    "organizer_invited": ONE_INVITATION,
    "organizer_join_first": ONE_INVITATION,
}

# What turning a kind off stops, in the words of the unsubscribe page, the footer and the account page.
KIND_LABELS: dict[MailKind, str] = {
    MailKind.news: N_("updates, corrections and leadership's responses and commitments"),
    MailKind.organizing: N_("news for organizers: moderation, opening, thresholds, closing and follow-up requests"),
    MailKind.digest: N_("the organizers' daily digest of new discussions"),
    MailKind.responding: N_("reminders for leadership: response due dates, escalations and follow-up requests"),
    MailKind.replies: N_("replies to comments you posted under your name"),
    MailKind.polls: N_("mail when a poll put to you opens"),
}


def kind_of(template: str) -> MailKind | None:
    """The kind a template's mail belongs to; None for mail nobody can turn off. Every template is one or the
    other: a new template that is neither fails here, in tests, before it can go out without a footer."""
    if template in ESSENTIAL:
        return None
    try:
        return TEMPLATE_KINDS[template]
    except KeyError:
        raise ValueError(
            f"email template {template} is neither a kind of mail nor one that cannot be turned off"
        ) from None
