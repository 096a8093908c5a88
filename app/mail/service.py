"""Queueing mail in the outbox, inside the caller's transaction."""

from __future__ import annotations

import unicodedata
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import Environment
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import to_the_hour
from app.models.mail import OutboxMessage, OutboxStatus
from app.models.mail_kinds import ESSENTIAL, KIND_LABELS, kind_of
from app.models.organization import OrganizationBranding

# What people wrote at length, shown in a mail's body as written: a comment, an update, a response, a reason.
# Every other text a mail shows (names, titles) is one line, and its control characters are shown escaped.
MULTI_LINE = frozenset({"body", "summary", "description"})


def escape_controls(text: str) -> str:
    """Control characters (line breaks first) shown as escapes: a name with a line break wrote its own lines into
    a mail's subject and body (issue #21). Names and titles refuse them now; rows from before may hold them."""
    if not any(unicodedata.category(character) in ("Cc", "Zl", "Zp") for character in text):
        return text
    return "".join(
        character.encode("unicode_escape").decode("ascii")
        if unicodedata.category(character) in ("Cc", "Zl", "Zp")
        else character
        for character in text
    )


class _MailEnvironment(Environment):
    """Templates rendered for mail: every text read from an object is escaped unless it is multi-line prose."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _one_line(attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _one_line(argument, super().getitem(obj, argument))


def _one_line(name: object, value: Any) -> Any:
    return escape_controls(value) if isinstance(value, str) and name not in MULTI_LINE else value


_mail_environments: weakref.WeakKeyDictionary[Environment, Environment] = weakref.WeakKeyDictionary()


def _for_mail(templates: Environment) -> Environment:
    """The page templates' environment (loader, filters, translations), with attribute reads escaped."""
    environment = _mail_environments.get(templates)
    if environment is None:
        environment = templates.overlay()
        environment.__class__ = _MailEnvironment
        _mail_environments[templates] = environment
    return environment


SOFTWARE = "Undersigned"
_NAMES = "mail-names"  # the key of names() in a session's info


def names(*, db: Session, templates: Environment) -> dict[str, str]:
    """What mail calls the site: the organization's name where its admins set one (app/organization/branding.py),
    as the pages' header does, else the software's; and the signature under every mail. Read once a transaction
    (a notice to every signer queues thousands)."""
    transaction = db.get_transaction()
    kept = db.info.get(_NAMES)
    if kept is not None and kept[0] is transaction:
        return dict(kept[1])
    branded = db.scalar(select(OrganizationBranding.name).where(OrganizationBranding.id == 1))
    default = f"{SOFTWARE} for {templates.globals['organization_name']}"
    found = {"site_name": branded or SOFTWARE, "signature": branded or default}
    db.info[_NAMES] = (transaction, found)
    return dict(found)


def render(*, templates: Environment, template: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render `templates/emails/<template>.txt` (first line `Subject: ...`): its subject and body."""
    values = {name: _one_line(name, value) for name, value in context.items()}
    rendered = _for_mail(templates).get_template(f"emails/{template}.txt").render(**values)
    first_line, _, body = rendered.lstrip().partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"email template {template} must start with a Subject: line")
    return escape_controls(first_line.removeprefix("Subject:").strip()), body.strip() + "\n"


def footer(
    *,
    templates: Environment,
    template: str,
    unsubscribe_url: str | None,
    about: str | None,
    account_url: str,
    signature: str = SOFTWARE,
) -> str:
    """The last lines of every mail: how to turn it off (one link), or why it cannot be."""
    kind = kind_of(template)
    if kind is not None and unsubscribe_url is None:
        raise ValueError(f"email template {template} is mail a person can turn off, and needs its unsubscribe link")
    if kind is None:
        unsubscribe_url = None
    return (
        _for_mail(templates)
        .get_template("emails/_footer.txt")
        .render(
            unsubscribe_url=unsubscribe_url,
            about=escape_controls(about) if about else None,
            account_url=account_url,
            kind_label=KIND_LABELS[kind] if kind else None,
            reason=ESSENTIAL.get(template),
            signature=escape_controls(signature),
        )
        .strip("\n")
        + "\n"
    )


def queue(
    *,
    db: Session,
    templates: Environment,
    to_address: str,
    template: str,
    context: Mapping[str, Any],
    now: datetime,
    unsubscribe_url: str | None = None,
    about: str | None = None,
    account_url: str = "/account",
) -> OutboxMessage:
    """Render the template and queue it, its footer saying how to turn it off (`unsubscribe_url`, for mail of a
    kind a person can turn off, with the petition it is `about`) or that it cannot be."""
    site = names(db=db, templates=templates)
    subject, body = render(templates=templates, template=template, context={**site, **context})
    body += "\n" + footer(
        templates=templates,
        template=template,
        unsubscribe_url=unsubscribe_url,
        about=about,
        account_url=account_url,
        signature=site["signature"],
    )
    message = OutboxMessage(
        to_address=to_address,
        subject=subject,
        body_text=body,
        template=template,
        status=OutboxStatus.pending,
        attempts=0,
        # The row names its recipient: it keeps the hour (due at once: the hour has begun), never the moment,
        # which would date the transactions around it (app/mail/sender.py).
        created_at=to_the_hour(now),
        next_attempt_at=to_the_hour(now),
        unsubscribe_url=unsubscribe_url if kind_of(template) else None,
    )
    db.add(message)
    db.flush()
    return message


def rehearse(
    *, db: Session, templates: Environment, to_address: str, template: str, context: Mapping[str, Any], now: datetime
) -> None:
    """Do the work of queueing a mail, and send nothing: written and deleted in the same transaction.

    For requests whose time must not tell whether an address has an account, when the address is one no mail
    may go to (outside the organization's domains): the other answers queue a mail (issue #21).
    """
    db.delete(queue(db=db, templates=templates, to_address=to_address, template=template, context=context, now=now))
    db.flush()
