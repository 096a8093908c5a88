"""Periodic work run by `undersigned worker` (and inside the web process in development)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from app.ballots import opening_mail
from app.ballots import service as ballots
from app.comments.digest import send_digests
from app.core.runtime import Runtime
from app.log import service as signature_log
from app.log import witness as witnessing
from app.mail.sender import deliver_due
from app.petitions import issuing_keys
from app.petitions import service as petitions
from app.responses import delivery
from app.signatures import retention

logger = logging.getLogger("undersigned.jobs")


def run_once(*, sessions: sessionmaker[Session], rt: Runtime) -> dict[str, int]:
    """One round: close petitions past their deadline, erase signer details past retention, sign ballots' moved
    counters and erase closed ballots' keys, fan out notifications, polls' openings, reminders and comment digests, send mail, and
    ask the witnesses to cosign new checkpoints."""
    with sessions.begin() as db:
        closed = petitions.close_expired(db=db, rt=rt)
    with sessions.begin() as db:
        erased = retention.erase_expired(db=db, rt=rt)
    with sessions.begin() as db:
        discussion_keys = issuing_keys.create_missing_discussion_keys(db=db, rt=rt)
        signer_keys = issuing_keys.create_missing_signer_keys(db=db, rt=rt)
    # Ballots (issue #25): a checkpoint for counters that moved, then the keys of closed ballots erased.
    with sessions.begin() as db:
        ballot_checkpoints = ballots.refresh_checkpoints(db=db, rt=rt)
        ballot_keys = ballots.destroy_closed_keys(db=db, rt=rt)
    notified = delivery.deliver_notifications(sessions=sessions, rt=rt)
    # Polls opened since the last round (issue #25): their audience is told once each, before the mail goes out.
    polls_opened = opening_mail.mail_openings(sessions=sessions, rt=rt)
    reminded = delivery.send_reminders(sessions=sessions, rt=rt)
    digests = send_digests(sessions=sessions, rt=rt)
    # Without a web process's batch task (tests, development with batching off), the worker appends the logs.
    logged = signature_log.flush(sessions=sessions, rt=rt) if rt.settings.anonymous_batch_seconds == 0 else 0
    sent = deliver_due(sessions=sessions, settings=rt.settings, clock=rt.clock)
    # After the mail, so a witness slow to answer never delays it. Only checkpoints of an hour already over are
    # sent: a witness's cosignature time is public to the second and must not date the batch (witness.py).
    cosigned = witnessing.submit_all(sessions=sessions, rt=rt)
    if closed:
        logger.info("closed petitions past their deadline", extra={"count": closed})
    if erased:
        logger.info("erased signer details past retention", extra={"petitions": len(erased)})
    return {
        "closed": closed,
        "erased": len(erased),
        "discussion_keys": discussion_keys,
        "ballot_checkpoints": ballot_checkpoints,
        "ballot_keys_destroyed": ballot_keys,
        "signer_keys": signer_keys,
        "notified": notified,
        "polls_opened": polls_opened,
        "reminded": reminded,
        "digests": digests,
        "logged": logged,
        "sent": sent,
        "cosigned": cosigned,
    }
