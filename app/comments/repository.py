"""Reading threads: keyset pages at every level, so a 10,000-comment petition loads like a 10-comment one.

A page of top-level comments is one index range; their replies come in one query per level below (at most three),
each reply list cut to its first few by a window function; the viewer's endorsements are one more query.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from app.comments import service
from app.comments.schemas import CommentSort
from app.core.errors import InvalidInput
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.comments import MAX_DEPTH, Comment, CommentEndorsement, CommentState
from app.models.petitions import Petition

PAGE_SIZE = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REPLIES_SHOWN = 3  # under each comment in a listing; the rest are a "more replies" link away
TOP_CONCERNS = 3

LOAD = (joinedload(Comment.author), joinedload(Comment.quoted).joinedload(Comment.author))


@dataclass
class Node:
    comment: Comment
    replies: list[Node] = field(default_factory=list)
    more_replies: bool = False
    endorsed: bool = False
    mine: bool = False
    collapsed: bool = False
    has_history: bool = False


@dataclass
class Page:
    nodes: list[Node]
    next_cursor: str | None


def _broken_cursor() -> InvalidInput:
    return InvalidInput(
        N_("This page link is broken: start again from the first page."),
        fields={"cursor": N_("Not a cursor from a previous page.")},
    )


def _cursor_of(comment: Comment, sort: CommentSort) -> str:
    if sort is CommentSort.top:
        return f"{comment.rank!r}~{comment.id}"
    if sort is CommentSort.endorsed:
        return f"{comment.endorsement_count}~{comment.id}"
    return time_cursor(comment)


def time_cursor(comment: Comment) -> str:
    """A place in time order (microseconds since 1970, then the id): anonymous comments have random ids, so
    order is (time, id). Digits and a tilde only, so it needs no escaping in a link."""
    moment = comment.created_at if comment.created_at.tzinfo else comment.created_at.replace(tzinfo=UTC)
    return f"{(moment - EPOCH) // timedelta(microseconds=1)}~{comment.id}"


def parse_time_cursor(cursor: str) -> tuple[datetime, int]:
    micros, _, last = cursor.partition("~")
    last_id = parse_id(last)
    if last_id is None or not (micros.isascii() and micros.isdigit()) or len(micros) > 17:
        raise _broken_cursor()
    return EPOCH + timedelta(microseconds=int(micros)), last_id


def _later(moment: datetime, last_id: int) -> ColumnElement[bool]:
    return or_(Comment.created_at > moment, and_(Comment.created_at == moment, Comment.id > last_id))


def _arrived_after(petition: Petition, after: str) -> ColumnElement[bool]:
    """The petition's comments that arrived after the place `after` (a time cursor, or "" for all of them)."""
    of_petition = Comment.petition_id == petition.id
    return and_(of_petition, _later(*parse_time_cursor(after))) if after else of_petition


def parse_id(text: str | None) -> int | None:
    """A row id from a form field or cursor: ASCII digits within the databases' integer range, else None."""
    if not text or not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= 2_147_483_647 else None


def reply_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The cursor of a page of replies: the last one shown, as (time, id)."""
    if not cursor:
        return None
    if len(cursor) > 80:
        raise _broken_cursor()
    return parse_time_cursor(cursor)


def _after(sort: CommentSort, cursor: str) -> ColumnElement[bool]:
    """The WHERE clause for the rows after `cursor` in `sort` order (all orders are descending)."""
    if sort is CommentSort.newest:
        moment, last_id = parse_time_cursor(cursor)
        return or_(Comment.created_at < moment, and_(Comment.created_at == moment, Comment.id < last_id))
    key, _, last = cursor.partition("~")
    after_id = parse_id(last)
    try:
        value: float | int = float(key) if sort is CommentSort.top else int(key)
    except ValueError:
        raise _broken_cursor() from None
    if after_id is None or not math.isfinite(value) or abs(value) > 2**31:
        raise _broken_cursor()
    column = Comment.rank if sort is CommentSort.top else Comment.endorsement_count
    return or_(column < value, and_(column == value, Comment.id < after_id))


def top_level(
    *, db: Session, petition: Petition, sort: CommentSort, cursor: str | None, limit: int = PAGE_SIZE
) -> tuple[list[Comment], str | None]:
    if cursor is not None and len(cursor) > 80:
        raise _broken_cursor()
    orders: dict[CommentSort, tuple[UnaryExpression[Any], ...]] = {
        CommentSort.top: (Comment.rank.desc(), Comment.id.desc()),
        CommentSort.endorsed: (Comment.endorsement_count.desc(), Comment.id.desc()),
        CommentSort.newest: (Comment.created_at.desc(), Comment.id.desc()),
    }
    order = orders[sort]
    statement = (
        select(Comment)
        .where(Comment.petition_id == petition.id, Comment.parent_id.is_(None))
        .options(*LOAD)
        .order_by(*order)
        .limit(limit + 1)
    )
    if cursor:
        statement = statement.where(_after(sort, cursor))
    rows = list(db.scalars(statement).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor_of(rows[-1], sort) if more and rows else None)


def _children(
    db: Session, parent_ids: list[int], per_parent: int, after: tuple[datetime, int] | None = None
) -> list[Comment]:
    numbered = select(
        Comment.id.label("id"),
        func.row_number().over(partition_by=Comment.parent_id, order_by=(Comment.created_at, Comment.id)).label("n"),
    )
    numbered = numbered.where(Comment.parent_id.in_(parent_ids))
    if after is not None:
        numbered = numbered.where(_later(*after))
    ranked = numbered.subquery()
    return list(
        db.scalars(
            select(Comment)
            .join(ranked, ranked.c.id == Comment.id)
            .where(ranked.c.n <= per_parent + 1)
            .options(*LOAD)
            .order_by(Comment.created_at, Comment.id)
        ).unique()
    )


def build(
    *,
    db: Session,
    rt: Runtime,
    roots: list[Comment],
    viewer: User | None,
    first_level_limit: int = REPLIES_SHOWN,
    after: tuple[datetime, int] | None = None,
) -> list[Node]:
    """The roots with their replies down to the deepest level, each reply list cut to its first few.

    `first_level_limit` and `after` page the roots' own replies (a comment's page shows many of them)."""
    nodes = [Node(comment) for comment in roots]
    level = nodes
    limit = first_level_limit
    while level and level[0].comment.depth < MAX_DEPTH:
        by_id = {node.comment.id: node for node in level if node.comment.reply_count}
        if not by_id:
            break
        children = _children(db, list(by_id), limit, after)
        next_level: list[Node] = []
        for child in children:
            parent = by_id[child.parent_id]  # type: ignore[index]
            if len(parent.replies) == limit:
                parent.more_replies = True
                continue
            node = Node(child)
            parent.replies.append(node)
            next_level.append(node)
        level, limit, after = next_level, REPLIES_SHOWN, None
    _annotate(db=db, rt=rt, nodes=nodes, viewer=viewer)
    return nodes


def _walk(nodes: list[Node]) -> Iterator[Node]:
    for node in nodes:
        yield node
        yield from _walk(node.replies)


def _annotate(*, db: Session, rt: Runtime, nodes: list[Node], viewer: User | None) -> None:
    everything = list(_walk(nodes))
    endorsed: set[int] = set()
    if viewer is not None and everything:
        endorsed = set(
            db.scalars(
                select(CommentEndorsement.comment_id).where(
                    CommentEndorsement.user_id == viewer.id,
                    CommentEndorsement.comment_id.in_([node.comment.id for node in everything]),
                )
            )
        )
    window = timedelta(minutes=rt.settings.comment_edit_minutes)
    for node in everything:
        comment = node.comment
        node.endorsed = comment.id in endorsed
        node.mine = service.is_author(comment=comment, user=viewer)
        node.collapsed = service.is_collapsed(rt=rt, comment=comment)
        # An edit after the window always keeps history, and the last edit is the latest: so this is exact.
        node.has_history = (
            comment.state == CommentState.visible
            and comment.edited_at is not None
            and (comment.is_anonymous or comment.edited_at - comment.created_at > window)
        )


def reader_nodes(*, db: Session, nodes: list[Node], viewer: User) -> list[Node]:
    """The comments of a page (`nodes`, built for no reader) that this reader wrote or endorses, marked so: a
    shared copy of the page shows every other comment as any reader sees it (app/petitions/page_cache.py)."""
    everything = list(_walk(nodes))
    if not everything:
        return []
    endorsed = set(
        db.scalars(
            select(CommentEndorsement.comment_id).where(
                CommentEndorsement.user_id == viewer.id,
                CommentEndorsement.comment_id.in_([node.comment.id for node in everything]),
            )
        )
    )
    return [
        replace(node, endorsed=node.comment.id in endorsed, mine=service.is_author(comment=node.comment, user=viewer))
        for node in everything
        if node.comment.id in endorsed or service.is_author(comment=node.comment, user=viewer)
    ]


def page(
    *,
    db: Session,
    rt: Runtime,
    petition: Petition,
    sort: CommentSort,
    cursor: str | None,
    viewer: User | None,
    limit: int = PAGE_SIZE,
) -> Page:
    roots, next_cursor = top_level(db=db, petition=petition, sort=sort, cursor=cursor, limit=limit)
    return Page(build(db=db, rt=rt, roots=roots, viewer=viewer), next_cursor)


def replies(
    *,
    db: Session,
    rt: Runtime,
    comment: Comment,
    after: tuple[datetime, int] | None,
    viewer: User | None,
    limit: int = PAGE_SIZE,
) -> tuple[Node, str | None]:
    """One comment with a page of its replies (oldest first), each with its own first replies."""
    (node,) = build(db=db, rt=rt, roots=[comment], viewer=viewer, first_level_limit=limit, after=after)
    next_cursor = time_cursor(node.replies[-1].comment) if node.more_replies and node.replies else None
    return node, next_cursor


def top_concerns(*, db: Session, petition: Petition, limit: int = TOP_CONCERNS) -> list[Comment]:
    """The most-endorsed top-level comments still shown: what the discussion agrees on."""
    return list(
        db.scalars(
            select(Comment)
            .where(
                Comment.petition_id == petition.id,
                Comment.parent_id.is_(None),
                Comment.state == CommentState.visible,
                Comment.endorsement_count > 0,
            )
            .options(*LOAD)
            .order_by(Comment.endorsement_count.desc(), Comment.id.desc())
            .limit(limit)
        ).unique()
    )


def newer_than(
    *, db: Session, petition: Petition, after: str, limit: int = PAGE_SIZE
) -> tuple[int, list[Comment], str]:
    """How many comments arrived after the place `after` (a time cursor, or "" for none), the newest top-level
    ones among them, and the new place (for live updates)."""
    arrived = _arrived_after(petition, after)
    count = db.scalar(select(func.count()).select_from(Comment).where(arrived)) or 0
    if not count:
        return 0, [], after
    rows = list(
        db.scalars(
            select(Comment)
            .where(arrived, Comment.parent_id.is_(None))
            .options(*LOAD)
            .order_by(Comment.created_at.desc(), Comment.id.desc())
            .limit(limit)
        ).unique()
    )
    return count, rows, latest(db=db, petition=petition)


def count_newer(*, db: Session, petition: Petition, after: str) -> int:
    """How many comments every reader sees (shown, not hidden or deleted) arrived after the place `after`, replies
    included: what the discussion's shared count poll answers. Anonymous ones are in the table only once their batch
    is written, so one still waiting is never counted."""
    visible = Comment.state == CommentState.visible
    return db.scalar(select(func.count()).select_from(Comment).where(_arrived_after(petition, after), visible)) or 0


def latest(*, db: Session, petition: Petition) -> str:
    """The place of the latest comment in time order, "" when there is none."""
    newest = db.scalar(
        select(Comment)
        .where(Comment.petition_id == petition.id)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(1)
    )
    return time_cursor(newest) if newest is not None else ""
