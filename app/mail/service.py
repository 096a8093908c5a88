"""Queueing mail in the outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import Environment
from sqlalchemy.orm import Session

from app.mail.models import OutboxMessage, OutboxStatus


def queue(*, db: Session, templates: Environment, to_address: str, template: str, context: Mapping[str, Any],
          now: datetime) -> OutboxMessage:
    """Render `templates/emails/<template>.txt` (first line `Subject: ...`) and queue it."""
    rendered = templates.get_template(f"emails/{template}.txt").render(**context)
    first_line, _, body = rendered.lstrip().partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"email template {template} must start with a Subject: line")
    message = OutboxMessage(to_address=to_address, subject=first_line.removeprefix("Subject:").strip(),
                            body_text=body.strip() + "\n", template=template, status=OutboxStatus.pending,
                            attempts=0, created_at=now, next_attempt_at=now)
    db.add(message)
    db.flush()
    return message
