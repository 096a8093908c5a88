"""Responses: posting them with commitments, tracking commitments, organizers' judgement, who is told."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.forms import FieldCheck
from app.core.i18n import N_
from app.core.markdown import render_markdown
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.lifecycle import RESPONDABLE_STATES
from app.models.petitions import Petition
from app.models.responses import (
    COMMITMENT_LABELS,
    OPEN_COMMITMENT_STATES,
    RESPONSE_LABELS,
    Commitment,
    CommitmentStatus,
    CommitmentUpdate,
    Judgement,
    PetitionResponse,
)
from app.petitions import notify
from app.petitions.service import record_event
from app.responses.schemas import CommitmentChange, JudgementCreate, ResponseCreate


@dataclass
class ResponseView:
    response: PetitionResponse
    details_html: str
    commitments: list[Commitment] = field(default_factory=list)
    judgement: Judgement | None = None
    # Who answered, by name as it is now (None once their account is gone), and the role they gave.
    responder_name: str | None = None
    # Each commitment's progress: its status changes and notes, oldest first, by commitment id.
    progress: dict[int, list[CommitmentUpdate]] = field(default_factory=dict)


def is_overdue(commitment: Commitment, today: date) -> bool:
    return commitment.status in OPEN_COMMITMENT_STATES and commitment.due_on is not None and commitment.due_on < today


def _notify(db: Session, petition: Petition, template: str, subject_id: int, now: datetime) -> None:
    notify.announce(db=db, petition=petition, template=template, subject_id=subject_id, now=now)


def _check_due_dates(due: list[date | None], *, today: date) -> None:
    past = {
        f"commitments.{index}.due_on": "Choose a due date from today on."
        for index, due_on in enumerate(due)
        if due_on is not None and due_on < today
    }
    if past:
        raise InvalidInput(N_("Please correct the highlighted fields."), fields=past)


def response_checks(*, rt: Runtime) -> dict[str, FieldCheck]:
    """post_response's check of the commitments' due dates, for a page to run with the schema's."""

    def commitments(raw: object) -> None:
        due = []
        for row in raw if isinstance(raw, list) else []:
            try:
                due.append(date.fromisoformat(row.get("due_on") or "") if row.get("due_on") else None)
            except ValueError:
                due.append(None)  # not a date: the schema says so
        _check_due_dates(due, today=rt.clock.now().date())

    return {"commitments": commitments}


def post_response(
    *, db: Session, rt: Runtime, petition: Petition, responder: User, form: ResponseCreate
) -> PetitionResponse:
    if petition.state not in RESPONDABLE_STATES:
        raise Conflict(N_("Only an open or closed petition can be answered."))
    now = rt.clock.now()
    _check_due_dates([commitment.due_on for commitment in form.commitments], today=now.date())
    response = PetitionResponse(
        petition_id=petition.id,
        responder_id=responder.id,
        summary=form.summary,
        details=form.details,
        status=form.status,
        created_at=now,
        responder_role=form.responder_role,
    )
    db.add(response)
    db.flush()
    for commitment in form.commitments:
        db.add(
            Commitment(
                response_id=response.id,
                petition_id=petition.id,
                text=commitment.text,
                owner=commitment.owner,
                due_on=commitment.due_on,
                status=CommitmentStatus.planned,
                created_at=now,
                updated_at=now,
            )
        )
    # The first response stops the public clock; a follow-up request is settled by the next response.
    db.execute(
        update(Petition)
        .where(Petition.id == petition.id, Petition.first_response_at.is_(None))
        .values(first_response_at=now)
        .execution_options(synchronize_session=False)
    )
    db.execute(
        update(Judgement)
        .where(Judgement.petition_id == petition.id, Judgement.follow_up_requested.is_(True))
        .values(follow_up_requested=False, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if petition.first_response_at is None:
        petition.first_response_at = now
    detail = f"{RESPONSE_LABELS[form.status]}: {form.summary}"
    if form.commitments:
        detail += f" ({len(form.commitments)} commitment{'s' if len(form.commitments) != 1 else ''})"
    record_event(db=db, petition=petition, kind="response_posted", at=now, actor=responder, detail=detail)
    _notify(db, petition, "response_posted", response.id, now)
    db.flush()
    return response


def get_commitment(*, db: Session, commitment_id: int) -> Commitment:
    commitment = db.get(Commitment, commitment_id)
    if commitment is None:
        raise NotFound(N_("There is no such commitment."))
    return commitment


def update_commitment(
    *, db: Session, rt: Runtime, commitment: Commitment, responder: User, form: CommitmentChange
) -> None:
    if form.status == commitment.status and not form.note:
        raise InvalidInput(N_("Nothing changed."), fields={"note": N_("Change the status, or add a progress note.")})
    now = rt.clock.now()
    commitment.status, commitment.updated_at = form.status, now
    db.add(
        CommitmentUpdate(
            commitment_id=commitment.id, author_id=responder.id, status=form.status, note=form.note, created_at=now
        )
    )
    petition = db.get(Petition, commitment.petition_id)
    assert petition is not None
    what = f"{commitment.text}: {COMMITMENT_LABELS[CommitmentStatus(form.status)].lower()}"
    record_event(
        db=db,
        petition=petition,
        kind="commitment_updated",
        at=now,
        actor=responder,
        detail=what + (f" ({form.note})" if form.note else ""),
    )
    # A progress note is news as much as a new status: signers and organizers hear of both.
    _notify(db, petition, "commitment_updated", commitment.id, now)
    db.flush()


def get_response(*, db: Session, petition: Petition, response_id: int) -> PetitionResponse:
    response = db.get(PetitionResponse, response_id)
    if response is None or response.petition_id != petition.id:
        raise NotFound(N_("There is no such response to this petition."))
    return response


def judge(
    *, db: Session, rt: Runtime, petition: Petition, response: PetitionResponse, organizer: User, form: JudgementCreate
) -> Judgement:
    if not form.answers and not form.reason:
        raise InvalidInput(
            N_("Please correct the highlighted fields."),
            fields={"reason": N_("Say what the response leaves unanswered.")},
        )
    now = rt.clock.now()
    judgement = db.scalar(select(Judgement).where(Judgement.response_id == response.id))
    if judgement is None:
        judgement = Judgement(response_id=response.id, petition_id=petition.id, created_at=now, answers=form.answers)
        db.add(judgement)
    judgement.answers, judgement.reason = form.answers, form.reason
    judgement.follow_up_requested, judgement.author_id, judgement.updated_at = form.follow_up, organizer.id, now
    verdict = "answers the petition" if form.answers else "does not answer the petition"
    record_event(
        db=db,
        petition=petition,
        kind="response_judged",
        at=now,
        actor=organizer,
        detail=f"The organizers say the response {verdict}" + (f": {form.reason}" if form.reason else "."),
    )
    if form.follow_up:
        record_event(db=db, petition=petition, kind="follow_up_requested", at=now, actor=organizer)
        notify.tell_responders(
            db=db, rt=rt, petition=petition, template="follow_up_requested", context={"reason": form.reason}
        )
        # The other organizers hear that one of them asked, so nobody asks twice or wonders why it was asked.
        notify.send(
            db=db,
            rt=rt,
            petition=petition,
            template="follow_up_asked",
            context={"reason": form.reason, "asker": organizer},
            users=[user for user in notify.organizers(db, petition) if user.id != organizer.id],
        )
    db.flush()
    return judgement


def responses(*, db: Session, petition: Petition) -> list[ResponseView]:
    """Every response with its responder, commitments, their progress and judgement, in five queries whatever their
    number."""
    rows = list(
        db.scalars(
            select(PetitionResponse)
            .where(PetitionResponse.petition_id == petition.id)
            .order_by(PetitionResponse.created_at, PetitionResponse.id)
        )
    )
    views = {row.id: ResponseView(response=row, details_html=render_markdown(row.details)) for row in rows}
    if views:
        for commitment in db.scalars(
            select(Commitment).where(Commitment.petition_id == petition.id).order_by(Commitment.id)
        ):
            views[commitment.response_id].commitments.append(commitment)
        for judgement in db.scalars(select(Judgement).where(Judgement.petition_id == petition.id)):
            views[judgement.response_id].judgement = judgement
        names = dict(
            db.execute(
                select(User.id, User.display_name).where(
                    User.id.in_({row.responder_id for row in rows if row.responder_id is not None})
                )
            ).all()
        )
        progress: dict[int, list[CommitmentUpdate]] = {}
        for change in db.scalars(
            select(CommitmentUpdate)
            .join(Commitment, Commitment.id == CommitmentUpdate.commitment_id)
            .where(Commitment.petition_id == petition.id)
            .order_by(CommitmentUpdate.created_at, CommitmentUpdate.id)
        ):
            progress.setdefault(change.commitment_id, []).append(change)
        for view in views.values():
            responder_id = view.response.responder_id
            view.responder_name = names.get(responder_id) if responder_id is not None else None
            view.progress = progress
    return list(views.values())


@dataclass(frozen=True)
class Due:
    petition: Petition
    overdue: bool
    follow_up_requested: bool


def awaiting_response(*, db: Session, now: datetime) -> list[Due]:
    """Petitions that reached their threshold and still wait for an answer (or a follow-up), soonest due first."""
    follow_ups = select(Judgement.petition_id).where(Judgement.follow_up_requested.is_(True))
    petitions = db.scalars(
        select(Petition)
        .where(
            Petition.state.in_([s.value for s in RESPONDABLE_STATES]),
            Petition.response_threshold_reached_at.is_not(None),
            or_(Petition.first_response_at.is_(None), Petition.id.in_(follow_ups)),
        )
        .order_by(Petition.response_due_at, Petition.id)
    )
    follow_up_ids = set(db.scalars(follow_ups))
    return [
        Due(
            petition=petition,
            follow_up_requested=petition.id in follow_up_ids,
            overdue=petition.first_response_at is None
            and petition.response_due_at is not None
            and petition.response_due_at < now,
        )
        for petition in petitions
    ]


def overdue_commitments(*, db: Session, today: date) -> list[tuple[Commitment, Petition]]:
    rows = db.execute(
        select(Commitment, Petition)
        .join(Petition, Petition.id == Commitment.petition_id)
        .where(Commitment.status.in_([s.value for s in OPEN_COMMITMENT_STATES]), Commitment.due_on < today)
        .order_by(Commitment.due_on, Commitment.id)
    )
    return [(commitment, petition) for commitment, petition in rows]


def reminder_candidates(*, db: Session, now: datetime, days_before: int) -> list[tuple[Petition, str]]:
    """(petition, kind) pairs to remind responders of: due within `days_before` days ("soon"), or due now."""
    soon = now + timedelta(days=days_before)
    petitions = db.scalars(
        select(Petition).where(
            Petition.state.in_([s.value for s in RESPONDABLE_STATES]),
            Petition.first_response_at.is_(None),
            and_(Petition.response_due_at.is_not(None), Petition.response_due_at <= soon),
        )
    )
    # The query leaves out petitions without a due date.
    return [
        (petition, "due" if petition.response_due_at is not None and petition.response_due_at <= now else "soon")
        for petition in petitions
    ]


def commitment_counts(*, db: Session, petition: Petition) -> dict[str, int]:
    rows = db.execute(
        select(Commitment.status, func.count()).where(Commitment.petition_id == petition.id).group_by(Commitment.status)
    )
    return {status: count for status, count in rows}
