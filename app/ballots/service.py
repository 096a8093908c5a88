"""Ballots' rules (issue #25): who puts a question to whom, what a question may be, when it is open, who may see it
and its results.

A ballot is created by a petition's organizers (attached to it, for its signers or for every member) or, for the
whole organization, by a responder or an admin (a "pulse" ballot). Creating it makes its own blind-signing key
(RFC 9474), and writes entry 0 of its own log, which commits the question, the options and the key, so every
wallet checks it blinds against the key everyone else was given. Its texts freeze once the first answer is
counted. Answering is in app/ballots/answers.py, the log in app/ballots/log.py, counting in
app/ballots/counting.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.ballots import audiences, counting, result_cache
from app.ballots import log as ballot_log

# The keys' part (app/ballots/keys.py), re-exported: callers name service.signer_for, service.public_key...
from app.ballots.keys import destroy_closed_keys as destroy_closed_keys  # noqa: PLC0414
from app.ballots.keys import public_key as public_key  # noqa: PLC0414
from app.ballots.keys import refresh_checkpoints as refresh_checkpoints  # noqa: PLC0414
from app.ballots.keys import signer_for as signer_for  # noqa: PLC0414
from app.core import blindrsa
from app.core.clock import to_the_hour
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.i18n import N_, Message
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.models.accounts import Role, User
from app.models.ballots import (
    NOTE_MAX,
    OPTION_MAX,
    QUESTION_MAX,
    RATIFICATION_OPTIONS,
    SCALE_OPTIONS,
    Ballot,
    BallotAnswer,
    BallotAudience,
    BallotGroup,
    BallotKind,
    BallotOption,
    BallotState,
)
from app.models.lifecycle import ACTIVE_STATES
from app.models.petitions import Petition
from app.models.responses import PetitionResponse
from app.models.signatures import SignerGroup
from app.organization import eligibility
from app.petitions import repository as petition_rows
from app.petitions import service as petitions

MIN_OPTIONS = 2
MAX_OPTIONS = 20
MAX_RANKED = 5
MAX_DAYS = 90
MAX_MIN_ANSWERS = 100_000
RATIFICATION_QUESTION = N_("Does this response answer our petition?")
FIELDS_ERROR = N_("Please correct the highlighted fields.")


# -- state --------------------------------------------------------------------------------------------------


def state(ballot: Ballot, now: datetime) -> BallotState:
    """scheduled, open or closed: the one rule, kept on the table (Ballot.state_at) so the wallet reads it too."""
    return ballot.state_at(now)


def results_final_at(ballot: Ballot, rt: Runtime) -> datetime:
    """When a closed ballot's result is final: answers accepted until the close wait at most one batch."""
    return ballot.closes_at + timedelta(seconds=rt.settings.anonymous_batch_seconds)


# -- reading ------------------------------------------------------------------------------------------------


def get_or_404(*, db: Session, ballot_id: int) -> Ballot:
    ballot = db.get(Ballot, ballot_id)
    if ballot is None:
        raise NotFound(N_("There is no such poll."))
    return ballot


def options(*, db: Session, ballot: Ballot) -> list[BallotOption]:
    return list(
        db.scalars(select(BallotOption).where(BallotOption.ballot_id == ballot.id).order_by(BallotOption.position))
    )


def labels(*, db: Session, ballot: Ballot) -> list[str]:
    return [option.label for option in options(db=db, ballot=ballot)]


def visible_to(*, db: Session, rt: Runtime, ballot: Ballot, user: User | None) -> bool:
    """A pulse ballot is read by whoever may read the open petitions; a petition's ballot by whoever may read that
    petition."""
    if ballot.petition_id is None:
        return True
    try:
        petitions.get_readable(db=db, rt=rt, petition_id=ballot.petition_id, user=user)
    except NotFound:
        return False
    return True


def get_visible(*, db: Session, rt: Runtime, ballot_id: int, user: User | None) -> Ballot:
    """The ballot, if this reader may see it (404 otherwise, as for a petition they may not read)."""
    ballot = get_or_404(db=db, ballot_id=ballot_id)
    if not visible_to(db=db, rt=rt, ballot=ballot, user=user):
        raise NotFound(N_("There is no such poll."))
    return ballot


def list_open(*, db: Session, rt: Runtime, pulse_only: bool = False, limit: int = 50) -> list[Ballot]:
    """Open ballots, closing soonest first: pulse ballots (for the home page) or all of them."""
    now = rt.clock.now()
    query = select(Ballot).where(Ballot.opens_at <= now, Ballot.closes_at > now, Ballot.closed_early.is_(False))
    if pulse_only:
        query = query.where(Ballot.petition_id.is_(None))
    return list(db.scalars(query.order_by(Ballot.closes_at, Ballot.id).limit(limit)))


def list_visible(*, db: Session, rt: Runtime, user: User | None, offset: int = 0, limit: int = 50) -> list[Ballot]:
    """Every ballot this reader may see, newest first: pulse ballots and those of petitions they may read (one
    query; the petitions' reading rule in SQL, app/petitions/repository.py, as get_readable decides it)."""
    readable = petition_rows.readable_to_everyone() if user is None else petition_rows.readable_by(user)
    query = (
        select(Ballot)
        .outerjoin(Petition, Petition.id == Ballot.petition_id)
        .where(or_(Ballot.petition_id.is_(None), readable))
        .order_by(Ballot.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(db.scalars(query))


def for_petition(*, db: Session, petition: Petition) -> list[Ballot]:
    """A petition's ballots, newest first (the caller decided the reader may read the petition)."""
    return list(db.scalars(select(Ballot).where(Ballot.petition_id == petition.id).order_by(Ballot.id.desc())))


def ratification_for(*, db: Session, response: PetitionResponse) -> Ballot | None:
    return db.scalar(select(Ballot).where(Ballot.response_id == response.id).order_by(Ballot.id).limit(1))


# -- who may put a question ---------------------------------------------------------------------------------


def may_create(*, db: Session, rt: Runtime, actor: User, petition: Petition | None) -> bool:
    if not actor.is_verified:
        return False
    if petition is None:
        return actor.has_role(Role.responder) or actor.has_role(Role.admin)
    return petition.state in ACTIVE_STATES and petitions.is_organizer(db=db, petition=petition, user=actor)


def may_manage(*, db: Session, ballot: Ballot, actor: User) -> bool:
    """Close early or edit: a petition's organizers for its ballots; for a pulse ballot its author or an admin."""
    if not actor.is_verified:
        return False
    if ballot.petition_id is not None:
        petition = db.get(Petition, ballot.petition_id)
        return petition is not None and petitions.is_organizer(db=db, petition=petition, user=actor)
    return actor.has_role(Role.admin) or (ballot.created_by == actor.id and actor.has_role(Role.responder))


def _require_creator(db: Session, rt: Runtime, actor: User, petition: Petition | None) -> None:
    if may_create(db=db, rt=rt, actor=actor, petition=petition):
        eligibility.require_eligible(db=db, rt=rt, user=actor)
        return
    if petition is None:
        raise Forbidden(N_("Only responders and admins put questions to the whole organization."))
    if petition.state not in ACTIVE_STATES:
        raise Conflict(N_("Polls can be added once the petition is open."))
    raise Forbidden(N_("Only this petition's organizers can add a poll to it."))


# -- validation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    question: str
    labels: list[str]
    max_choices: int
    opens_at: datetime
    closes_at: datetime
    min_answers: int
    note: str | None
    groups: list[SignerGroup]


def _check(
    db: Session,
    rt: Runtime,
    *,
    petition: Petition | None,
    kind: BallotKind,
    question: str,
    option_texts: Sequence[str],
    max_choices: int | None,
    audience: BallotAudience,
    opens_at: datetime | None,
    closes_at: datetime,
    min_answers: int | None,
    note: str | None,
    group_ids: Sequence[int] | None = None,
) -> Checked:
    """Every rule a ballot's fields follow, all checked in one round so a form lists every problem at once.
    `group_ids`: the departments and locations chosen for a new ballot (None: an edit, which keeps its audience)."""
    errors: dict[str, str] = {}
    now = rt.clock.now()
    question = " ".join(question.split())
    if not question:
        errors["question"] = N_("Write the question.")
    elif len(question) > QUESTION_MAX:
        errors["question"] = Message(N_("Keep the question under %(max)s characters."), max=QUESTION_MAX)
    labels = [" ".join(text.split()) for text in option_texts]
    if kind is BallotKind.scale:
        if any(labels):
            errors["options"] = N_("An agreement scale has its five fixed options: leave the options empty.")
        labels = list(SCALE_OPTIONS)
    else:
        labels = [label for label in labels if label]
        if len(labels) < MIN_OPTIONS:
            errors["options"] = Message(N_("Give at least %(min)s options."), min=MIN_OPTIONS)
        elif len(labels) > MAX_OPTIONS:
            errors["options"] = Message(N_("Give at most %(max)s options."), max=MAX_OPTIONS)
        elif any(len(label) > OPTION_MAX for label in labels):
            errors["options"] = Message(N_("Keep each option under %(max)s characters."), max=OPTION_MAX)
        elif len({label.casefold() for label in labels}) != len(labels):
            errors["options"] = N_("Two options say the same thing: give each option once.")
    limit = {
        BallotKind.single: 1,
        BallotKind.scale: 1,
        BallotKind.multiple: len(labels),
        BallotKind.ranked: min(MAX_RANKED, len(labels)),
    }[kind]
    if max_choices is None:
        max_choices = limit
    elif kind in (BallotKind.single, BallotKind.scale) and max_choices != 1:
        errors["max_choices"] = N_("A single-choice question takes one choice.")
    elif "options" not in errors and not 1 <= max_choices <= max(limit, 1):
        errors["max_choices"] = Message(N_("Allow between 1 and %(max)s choices."), max=max(limit, 1))
    if audience is BallotAudience.signers and petition is None:
        errors["audience"] = N_("Only a petition's poll can be put to its signers.")
    # Far-off times are brought near before any arithmetic on them (the year 9999 plus an hour overflows, as does the
    # year 1 read in UTC), then read in UTC: a whole hour is a UTC one, whatever zone the API was sent (12:00 in
    # India is 06:30 UTC, and rounded in its own zone it would open and close the poll at :30).
    horizon, past = now + timedelta(days=2 * MAX_DAYS), now - timedelta(days=2 * MAX_DAYS)
    closes_at = min(max(closes_at, past), horizon).astimezone(UTC)
    if opens_at is not None:
        opens_at = min(max(opens_at, past), horizon).astimezone(UTC)
    # Whole hours: an opening is the hour it falls in (now, if that hour has begun), a closing the next whole hour.
    opening = max(to_the_hour(opens_at or now), to_the_hour(now))
    closing = to_the_hour(closes_at) + (timedelta(hours=1) if closes_at != to_the_hour(closes_at) else timedelta())
    if closing <= now:
        errors["closes_at"] = N_("The closing time has passed: choose a time in the future.")
    elif closing <= opening:
        errors["closes_at"] = N_("The poll must close after it opens.")
    elif closing - opening > timedelta(days=MAX_DAYS):
        errors["closes_at"] = Message(N_("A poll stays open at most %(days)s days."), days=MAX_DAYS)
    if opening - to_the_hour(now) > timedelta(days=MAX_DAYS):
        errors["opens_at"] = Message(N_("A poll opens within %(days)s days."), days=MAX_DAYS)
    k = rt.settings.min_group_size
    if min_answers is None:
        min_answers = k
    elif not k <= min_answers <= MAX_MIN_ANSWERS:
        errors["min_answers"] = Message(
            N_("The minimum number of answers is between %(min)s and %(max)s: fewer would let a result be traced."),
            min=k,
            max=MAX_MIN_ANSWERS,
        )
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX:
        errors["note"] = Message(N_("Keep the note under %(max)s characters."), max=NOTE_MAX)
    groups = audiences.check_groups(db, audience, group_ids, k, errors) if group_ids is not None else []
    if errors:
        raise InvalidInput(FIELDS_ERROR, fields=errors)
    return Checked(question, labels, max_choices, opening, closing, min_answers, note, groups)


# -- creating and changing ----------------------------------------------------------------------------------


def create(
    db: Session,
    rt: Runtime,
    *,
    actor: User,
    petition: Petition | None,
    kind: BallotKind,
    question: str,
    options: Sequence[str],
    max_choices: int | None,
    audience: BallotAudience,
    opens_at: datetime | None,
    closes_at: datetime,
    results_live: bool = False,
    min_answers: int | None = None,
    note: str | None = None,
    response: PetitionResponse | None = None,
    groups: Sequence[int] = (),
) -> Ballot:
    """A new ballot with its options, its own blind-signing key and entry 0 of its log.

    Organizers attach one to their petition (for its signers or every member); responders and admins put one to
    the whole organization (`petition` None, audience members). Either may put it to the members of chosen
    departments or locations (audience groups, `groups` their ids). Times are rounded to whole hours (an opening
    that has begun opens now). Refusals: InvalidInput with `fields` for the form, Forbidden for who may not."""
    _require_creator(db, rt, actor, petition)
    checked = _check(
        db,
        rt,
        petition=petition,
        kind=kind,
        question=question,
        option_texts=options,
        max_choices=max_choices,
        audience=audience,
        opens_at=opens_at,
        closes_at=closes_at,
        min_answers=min_answers,
        note=note,
        group_ids=groups,
    )
    if response is not None and (petition is None or response.petition_id != petition.id):
        raise InvalidInput(FIELDS_ERROR, fields={"response": N_("That response does not answer this petition.")})
    private = blindrsa.PrivateKey.generate(rt.settings.blind_key_bits)
    now = rt.clock.now()
    ballot = Ballot(
        petition_id=petition.id if petition is not None else None,
        response_id=response.id if response is not None else None,
        kind=kind,
        audience=audience,
        question=checked.question,
        note=checked.note,
        max_choices=checked.max_choices,
        opens_at=checked.opens_at,
        closes_at=checked.closes_at,
        results_live=results_live,
        min_answers=checked.min_answers,
        created_by=actor.id,
        created_hour=to_the_hour(now),
        closed_early=False,
        key_id=private.public.key_id(),
        spki=private.public.spki(),
        credentials_issued=0,
        answers_counted=0,
    )
    ballot.sealed_private = rt.sealer.seal(private.to_pem().decode(), context=ballot.sealing_context)
    db.add(ballot)
    db.flush()
    db.add_all(BallotOption(ballot_id=ballot.id, position=i, label=label) for i, label in enumerate(checked.labels))
    db.add_all(BallotGroup(ballot_id=ballot.id, group_id=group.id) for group in checked.groups)
    db.flush()
    ballot_log.open_log(
        db=db, rt=rt, ballot=ballot, labels=checked.labels, groups=audiences.log_entries(checked.groups), now=now
    )
    if ballot.petition_id is not None:
        page_changed(db, ballot.petition_id)
    return ballot


def edit(
    db: Session,
    rt: Runtime,
    *,
    actor: User,
    ballot: Ballot,
    question: str,
    options: Sequence[str],
    max_choices: int | None,
    opens_at: datetime | None,
    closes_at: datetime,
    results_live: bool,
    min_answers: int | None,
    note: str | None,
) -> Ballot:
    """Change a ballot. Before it opens, everything; its log gets the new texts as a new "ballot" entry (the key
    stays). Once it opens, only its note and closing time (not earlier than now): answers accepted since may wait
    in any server's memory for their batch, and the only moment every process knows is the opening, so from then
    on the question, options, kind, number of choices, minimum of answers and whether results show live are
    frozen, and a change to them is refused (409) rather than counted under texts people did not answer."""
    if not may_manage(db=db, ballot=ballot, actor=actor):
        raise Forbidden(N_("Only the poll's organizers can change it."))
    # Locked, then read again: an edit or a batch meanwhile is seen, and so is the time, since the wait for the
    # lock may have crossed the opening or the close (both are decided under the lock).
    db.execute(select(Ballot.id).where(Ballot.id == ballot.id).with_for_update())
    db.refresh(ballot)
    now = rt.clock.now()
    if state(ballot, now) is BallotState.closed:
        raise Conflict(N_("This poll has closed; it can no longer be changed."))
    current = labels(db=db, ballot=ballot)
    if ballot.response_id is not None:
        # A ratification asks its one question with its three options: only its note and times change.
        question, options = RATIFICATION_QUESTION, list(RATIFICATION_OPTIONS)
    opened = state(ballot, now) is not BallotState.scheduled
    if opened:
        frozen = _frozen_changes(
            ballot,
            current,
            question=question,
            options=options,
            max_choices=max_choices,
            results_live=results_live,
            min_answers=min_answers,
        )
        # An opening asked for a later hour cannot be had: people may be answering already. An earlier one, or
        # now, is where the poll stands (an opening is never before the hour it was asked in).
        if opens_at is not None and opens_at > now and to_the_hour(opens_at) != ballot.opens_at:
            frozen.append("opens_at")
        if frozen:
            raise Conflict(
                N_(
                    "This poll is open: people may have answered it already, so its question, options and rules "
                    "can no longer change. Only its note and closing time can."
                ),
                fields={name: N_("Fixed once the poll opens.") for name in frozen},
            )
        question, max_choices, min_answers, results_live = (
            ballot.question,
            ballot.max_choices,
            ballot.min_answers,
            ballot.results_live,
        )
        options = [] if ballot.kind is BallotKind.scale else current
    petition = db.get(Petition, ballot.petition_id) if ballot.petition_id is not None else None
    checked = _check(
        db,
        rt,
        petition=petition,
        kind=ballot.kind,
        question=question,
        option_texts=options,
        max_choices=max_choices,
        audience=ballot.audience,
        opens_at=ballot.opens_at if opened else opens_at,
        closes_at=closes_at,
        min_answers=min_answers,
        note=note,
    )
    ballot.closes_at = checked.closes_at
    ballot.note = checked.note
    if not opened:
        ballot.question = checked.question
        ballot.max_choices = checked.max_choices
        ballot.opens_at = checked.opens_at
        ballot.results_live = results_live
        ballot.min_answers = checked.min_answers
        db.execute(delete(BallotOption).where(BallotOption.ballot_id == ballot.id))
        db.add_all(BallotOption(ballot_id=ballot.id, position=i, label=label) for i, label in enumerate(checked.labels))
    db.flush()
    if ballot.answers_counted == 0:
        # Its texts again with the new closing time. After the first counted answer the log takes no ballot entry
        # (a verifier refuses one), and the closing time moves in the row only, as closing early does.
        ballot_log.append_ballot_entry(
            db=db,
            rt=rt,
            ballot=ballot,
            labels=checked.labels,
            groups=audiences.log_entries(audiences.audience_groups(db=db, ballot=ballot)),
            now=now,
        )
    if ballot.petition_id is not None:
        page_changed(db, ballot.petition_id)
    return ballot


def _frozen_changes(
    ballot: Ballot,
    current: list[str],
    *,
    question: str,
    options: Sequence[str],
    max_choices: int | None,
    results_live: bool,
    min_answers: int | None,
) -> list[str]:
    """The fields an edit of an open ballot would change that are frozen since it opened (None: left as is)."""
    changed = []
    if " ".join(question.split()) != ballot.question:
        changed.append("question")
    given = [" ".join(text.split()) for text in options]
    given = [label for label in given if label]
    if given != current and not (ballot.kind is BallotKind.scale and not given):
        changed.append("options")
    if max_choices is not None and max_choices != ballot.max_choices:
        changed.append("max_choices")
    if results_live != ballot.results_live:
        changed.append("results_live")
    if min_answers is not None and min_answers != ballot.min_answers:
        changed.append("min_answers")
    return changed


def close_early(db: Session, rt: Runtime, *, actor: User, ballot: Ballot) -> Ballot:
    """Close a ballot before its closing time: it takes no answer from now on. Its closing time becomes the end of
    the hour it closed in (nothing finer is kept: the row names its author), so answers accepted before the close,
    which may still wait in a server's memory, are through their batch before the result is shown."""
    if not may_manage(db=db, ballot=ballot, actor=actor):
        raise Forbidden(N_("Only the poll's organizers can close it."))
    now = rt.clock.now()
    if state(ballot, now) is BallotState.closed:
        raise Conflict(N_("This poll has already closed."))
    db.execute(
        update(Ballot)
        .where(Ballot.id == ballot.id)
        .values(closed_early=True, closes_at=max(to_the_hour(now) + timedelta(hours=1), ballot.opens_at))
        .execution_options(synchronize_session=False)
    )
    db.refresh(ballot)
    if ballot.petition_id is not None:
        page_changed(db, ballot.petition_id)
    return ballot


def open_ratification(
    db: Session,
    rt: Runtime,
    *,
    actor: User,
    petition: Petition,
    response: PetitionResponse,
    closes_at: datetime,
    note: str | None = None,
) -> Ballot:
    """After leadership responded, the organizers ask the petition's signers "Does this response answer our
    petition?" (Yes / Partly / No, one choice, results at close). One such ballot per response."""
    if response.petition_id != petition.id:
        raise NotFound(N_("There is no such response to this petition."))
    if ratification_for(db=db, response=response) is not None:
        raise Conflict(N_("The signers are already being asked about this response."))
    return create(
        db,
        rt,
        actor=actor,
        petition=petition,
        kind=BallotKind.single,
        question=RATIFICATION_QUESTION,
        options=list(RATIFICATION_OPTIONS),
        max_choices=1,
        audience=BallotAudience.signers,
        opens_at=None,
        closes_at=closes_at,
        results_live=False,
        min_answers=None,
        note=note,
        response=response,
    )


# -- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hidden:
    """The result is kept until `until` (the ballot's close, and the last batch after it)."""

    until: datetime


def counted_choices(*, db: Session, ballot: Ballot) -> list[list[int]]:
    """The choice of every counted answer's last revision."""
    return [
        ballot_log.parse_choice(text)
        for text in db.scalars(
            select(BallotAnswer.choice).where(BallotAnswer.ballot_id == ballot.id, BallotAnswer.superseded.is_(False))
        )
    ]


def result_hidden(ballot: Ballot, rt: Runtime) -> bool:
    """Whether the result is still kept: until it is final, unless the ballot shows it live."""
    if ballot.results_live:
        return False
    now = rt.clock.now()
    return state(ballot, now) is not BallotState.closed or now < results_final_at(ballot, rt)


def result_shown(ballot: Ballot, rt: Runtime) -> bool:
    """Whether the result is shown now (not kept, and at least the minimum of answers): the one rule for the
    result, and for the answers in the log, which would show the result to anyone who counts them."""
    return not result_hidden(ballot, rt) and ballot.answers_counted >= ballot.min_answers


def results(db: Session, rt: Runtime, ballot: Ballot) -> counting.Results | counting.NotEnough | Hidden:
    """What may be shown of the result now: Hidden until it is final (unless the ballot shows it live), NotEnough
    below the ballot's minimum of answers, else the count."""
    if result_hidden(ballot, rt):
        return Hidden(until=results_final_at(ballot, rt))
    if not result_shown(ballot, rt):
        return counting.NotEnough(min_answers=ballot.min_answers)
    return result_cache.counted(
        db,
        rt,
        ballot,
        lambda: counting.tally(
            kind=ballot.kind,
            labels=labels(db=db, ballot=ballot),
            choices=counted_choices(db=db, ballot=ballot),
            min_answers=ballot.min_answers,
        ),
    )
