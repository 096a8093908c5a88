"""Listing and searching petitions: a fixed number of queries whatever the page size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, exists, func, not_, or_, select, true
from sqlalchemy import inspect as inspect_mapper
from sqlalchemy.orm import Session, joinedload

from app.models.accounts import Role, RoleGrant, User, UserSession
from app.models.anonymous import TokenIssuance
from app.models.comments import Comment, CommentEndorsement
from app.models.lifecycle import LISTED_STATES, VISIBLE_STATES, PetitionState
from app.models.log import LogLeaf
from app.models.petitions import Category, Follow, Petition, PetitionOrganizer, RejectionReason
from app.models.signatures import Signature
from app.petitions import search
from app.petitions.schemas import ListFilter, ListSort

PER_PAGE = 20


@dataclass(frozen=True)
class Listing:
    petitions: list[Petition]
    total: int
    page: int
    pages: int
    recent_counts: dict[int, int]


def readable_to_everyone() -> ColumnElement[bool]:
    """What service.get_readable lets a signed-out reader see, in SQL: a visible state, and not a rejection whose
    reason is withheld."""
    withheld = and_(
        Petition.state == PetitionState.rejected,
        exists().where(RejectionReason.code == Petition.rejection_code, RejectionReason.public.is_(False)),
    )
    return and_(Petition.state.in_([state.value for state in VISIBLE_STATES]), not_(withheld))


def readable_by(user: User) -> ColumnElement[bool]:
    """What service.get_readable lets `user` see, in SQL: what everyone may, what they organize, and, for moderators,
    everything."""
    if user.has_role(Role.moderator):
        return true()
    organizes = exists().where(PetitionOrganizer.petition_id == Petition.id, PetitionOrganizer.user_id == user.id)
    return or_(readable_to_everyone(), organizes)


def is_readable_to_everyone(*, db: Session, petition_id: int) -> bool:
    return db.scalar(select(Petition.id).where(Petition.id == petition_id, readable_to_everyone())) is not None


def _filtered(statement: Select[*tuple[Any, ...]], state_filter: ListFilter) -> Select[*tuple[Any, ...]]:
    listed = [state.value for state in LISTED_STATES]
    if state_filter is ListFilter.open:
        return statement.where(Petition.state == PetitionState.open)
    if state_filter is ListFilter.closed:
        return statement.where(Petition.state == PetitionState.closed)
    if state_filter is ListFilter.awaiting_response:
        return statement.where(
            Petition.state.in_(listed),
            Petition.response_threshold_reached_at.is_not(None),
            Petition.first_response_at.is_(None),
        )
    if state_filter is ListFilter.responded:
        return statement.where(Petition.state.in_(listed), Petition.first_response_at.is_not(None))
    return statement.where(Petition.state.in_(listed))


def list_petitions(
    *,
    db: Session,
    now: datetime,
    state_filter: ListFilter = ListFilter.open,
    category: str | None = None,
    sort: ListSort = ListSort.most_signed,
    query: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Listing:
    statement = _filtered(select(Petition), state_filter)
    if category:
        statement = statement.join(Category, Category.id == Petition.category_id).where(Category.slug == category)
    ranked = search.ranked_ids(db, query) if query else None
    if query and ranked is None:
        return Listing(petitions=[], total=0, page=1, pages=1, recent_counts={})
    if ranked is not None:
        matches = ranked.subquery()
        statement = statement.join(matches, matches.c.petition_id == Petition.id)
    if sort is ListSort.closing_soon:
        statement = statement.where(Petition.deadline.is_not(None))

    total = db.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)

    recent = (
        select(Signature.petition_id, func.count().label("recent"))
        .where(Signature.signed_hour >= now - timedelta(hours=24))
        .group_by(Signature.petition_id)
        .subquery()
    )
    statement = statement.outerjoin(recent, recent.c.petition_id == Petition.id).add_columns(
        func.coalesce(recent.c.recent, 0).label("recent")
    )
    if sort is ListSort.relevance and ranked is not None:
        order = [matches.c.rank, Petition.id.desc()]
    elif sort is ListSort.newest:
        order = [Petition.opened_at.desc().nulls_last(), Petition.id.desc()]
    elif sort is ListSort.trending:
        order = [func.coalesce(recent.c.recent, 0).desc(), Petition.signature_count.desc(), Petition.id.desc()]
    elif sort is ListSort.closing_soon:
        order = [Petition.deadline.asc(), Petition.id.asc()]
    else:
        order = [Petition.signature_count.desc(), Petition.id.desc()]
    rows = db.execute(
        statement.options(joinedload(Petition.category)).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Listing(
        petitions=[row[0] for row in rows],
        total=total,
        page=page,
        pages=pages,
        recent_counts={row[0].id: row[1] for row in rows},
    )


def similar_open(*, db: Session, text: str, exclude_id: int | None = None, limit: int = 5) -> list[Petition]:
    """Up to `limit` open petitions sharing words with `text`, shown before a new one is written."""
    ranked = search.ranked_ids(db, text, any_term=True)
    if ranked is None:
        return []
    matches = ranked.subquery()
    statement = (
        select(Petition)
        .join(matches, matches.c.petition_id == Petition.id)
        .where(Petition.state == PetitionState.open)
        .options(joinedload(Petition.category))
        .order_by(matches.c.rank)
        .limit(limit)
    )
    if exclude_id is not None:
        statement = statement.where(Petition.id != exclude_id)
    return list(db.scalars(statement))


def mine(*, db: Session, user_id: int) -> list[Petition]:
    return list(
        db.scalars(
            select(Petition)
            .join(PetitionOrganizer, PetitionOrganizer.petition_id == Petition.id)
            .where(PetitionOrganizer.user_id == user_id)
            .options(joinedload(Petition.category))
            .order_by(Petition.updated_at.desc())
        )
    )


@dataclass(frozen=True)
class ReaderState:
    """What the petition page shows of its reader's own: organizer, follower, signer, anonymous-signing token."""

    organizer: bool = False
    following: bool = False
    signature_id: str | None = None
    token_burned: bool = False  # signed with a name and withdrew: the token stays spent
    token_unspent: bool = False  # issued a token, neither spent nor forfeited
    # wrote or endorses a comment of the petition: only then are the discussion's controls theirs to look up
    in_discussion: bool = False


def reader_state(*, db: Session, petition_id: int, user: User | None) -> ReaderState:
    """The reader's state in one query (the page read it with five)."""
    if user is None:
        return ReaderState()
    issued = and_(TokenIssuance.account_id == user.id, TokenIssuance.petition_id == petition_id)
    row = db.execute(
        select(
            exists().where(PetitionOrganizer.petition_id == petition_id, PetitionOrganizer.user_id == user.id),
            exists().where(Follow.petition_id == petition_id, Follow.user_id == user.id),
            select(Signature.id)
            .where(Signature.petition_id == petition_id, Signature.account_id == user.id)
            .scalar_subquery(),
            select(TokenIssuance.burned).where(issued).scalar_subquery(),
            select(TokenIssuance.blind_signature.is_not(None)).where(issued).scalar_subquery(),
            or_(
                exists().where(Comment.petition_id == petition_id, Comment.author_id == user.id),
                exists().where(
                    CommentEndorsement.user_id == user.id,
                    CommentEndorsement.comment_id == Comment.id,
                    Comment.petition_id == petition_id,
                ),
            ),
        )
    ).one()
    organizer, following, signature_id, burned, blind, in_discussion = row
    return ReaderState(
        organizer=bool(organizer),
        following=bool(following),
        signature_id=signature_id,
        token_burned=bool(burned),
        token_unspent=bool(blind) and not burned,
        in_discussion=bool(in_discussion),
    )


@dataclass(frozen=True)
class SignedInReader:
    """A signed-in reader of one petition, and the petition's row, as one statement reads them (issue #24): what the
    petition page's fast path (app/routes/petition_reader.py) needs to decide whether the shared copy may answer, and
    the reader's own parts."""

    user_id: int
    display_name: str
    verified: bool
    has_roles: bool
    readable: bool  # what service.get_readable lets anyone read (a visible state, no withheld rejection)
    petition_row: tuple[Any, ...]  # in page_cache.row_of's order
    state: ReaderState
    signature: OwnSignature | None
    leaf_hash: bytes | None


@dataclass(frozen=True)
class OwnSignature:
    """What the sign panel shows of the reader's signature."""

    id: str
    visibility: str
    signed_hour: datetime
    log_index: int | None
    invalidation_id: int | None


# The petition's own columns, in the order page_cache.row_of reads them from a loaded petition.
_PETITION_COLUMNS = [attribute.columns[0] for attribute in inspect_mapper(Petition).column_attrs]


def _signed_in_reader_statement() -> Select[Any]:
    petition_id: BindParameter[int] = bindparam("petition_id")
    issued = and_(TokenIssuance.account_id == User.id, TokenIssuance.petition_id == petition_id)
    return (
        select(
            User.id,
            User.display_name,
            User.email_verified_at,
            exists().where(RoleGrant.user_id == User.id),
            readable_to_everyone(),
            exists().where(PetitionOrganizer.petition_id == petition_id, PetitionOrganizer.user_id == User.id),
            exists().where(Follow.petition_id == petition_id, Follow.user_id == User.id),
            select(TokenIssuance.burned).where(issued).scalar_subquery(),
            select(TokenIssuance.blind_signature.is_not(None)).where(issued).scalar_subquery(),
            or_(
                exists().where(Comment.petition_id == petition_id, Comment.author_id == User.id),
                exists().where(
                    CommentEndorsement.user_id == User.id,
                    CommentEndorsement.comment_id == Comment.id,
                    Comment.petition_id == petition_id,
                ),
            ),
            Signature.id,
            Signature.visibility,
            Signature.signed_hour,
            Signature.log_index,
            Signature.invalidation_id,
            select(LogLeaf.hash)
            .where(LogLeaf.petition_id == petition_id, LogLeaf.index == Signature.log_index)
            .scalar_subquery(),
            *_PETITION_COLUMNS,
        )
        .select_from(UserSession)
        .join(User, User.id == UserSession.user_id)
        .join(Petition, Petition.id == petition_id)
        .outerjoin(Signature, and_(Signature.petition_id == petition_id, Signature.account_id == User.id))
        # The session's rules are app/accounts/sessions.py's: the digest of the cookie, not expired.
        .where(UserSession.id_digest == bindparam("digest"), UserSession.expires_at > bindparam("now"))
    )


# Built once: a page runs it without building a statement or its cache key (tested against reader_state and the
# route's own reads in tests/test_page_cache_reader.py).
_SIGNED_IN_READER = _signed_in_reader_statement()


def signed_in_reader(*, db: Session, petition_id: int, digest: str, now: datetime) -> SignedInReader | None:
    """The session's reader and the petition in one statement; None when the session is unknown or expired, or there
    is no such petition."""
    row = (
        db.connection()
        .execute(_SIGNED_IN_READER, {"petition_id": petition_id, "digest": digest, "now": now})
        .one_or_none()
    )
    if row is None:
        return None
    (user_id, name, verified_at, has_roles, readable, organizer, following, burned, blind, in_discussion) = row[:10]
    signature_id, visibility, signed_hour, log_index, invalidation_id, leaf = row[10:16]
    return SignedInReader(
        user_id=user_id,
        display_name=name,
        verified=verified_at is not None,
        has_roles=bool(has_roles),
        readable=bool(readable),
        petition_row=tuple(row[16:]),
        state=ReaderState(
            organizer=bool(organizer),
            following=bool(following),
            signature_id=signature_id,
            token_burned=bool(burned),
            token_unspent=bool(blind) and not burned,
            in_discussion=bool(in_discussion),
        ),
        signature=OwnSignature(
            id=signature_id,
            visibility=visibility,
            signed_hour=signed_hour,
            log_index=log_index,
            invalidation_id=invalidation_id,
        )
        if signature_id is not None
        else None,
        leaf_hash=leaf,
    )
