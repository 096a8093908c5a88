"""The ballots' JSON shapes (issue #25): the contract between the API, the wallet and `undersigned verify`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict

from app.ballots import audiences, counting
from app.ballots.service import Hidden
from app.core import b64url
from app.models.anonymous import SignerKey
from app.models.ballots import Ballot, BallotAudience, BallotKind, BallotState
from app.models.signatures import GroupKind, SignerGroup

B64URL = r"^[A-Za-z0-9_-]*={0,2}$"
# A row id sent in a body: within the databases' integer range, so a huge one is a plain 422 rather than an
# overflow inside SQLite's driver (a 500), as app/core/types.Id does for paths. Strict: a JSON whole number only, so
# `true`, "1" or 1.0 (a client's bug) is refused in words rather than read as the group or row whose id is 1.
RowId = Annotated[int, Strict(), Field(ge=1, le=2_147_483_647)]


class BallotCreate(BaseModel):
    petition_id: int | None = Field(
        None, ge=1, le=2_147_483_647, description="The petition the ballot belongs to; none for a pulse ballot."
    )
    kind: BallotKind
    question: str = Field(max_length=1000)
    options: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="2 to 20 options (none for the agreement scale, whose five options are fixed).",
    )
    max_choices: int | None = Field(
        None, ge=1, le=100, description="multiple: up to this many; ranked: rank up to this many (at most 5)."
    )
    audience: BallotAudience = BallotAudience.members
    groups: list[RowId] = Field(
        default_factory=list,
        max_length=200,
        description="Audience `groups`: the ids of the departments and locations (GET /api/v1/signer-groups) whose "
        "members may answer, whichever of them they are in; at least one, each given by at least k "
        "members on their account. Empty for the other audiences.",
    )
    opens_at: AwareDatetime | None = Field(None, description="Rounded down to the hour; none or past: now.")
    closes_at: AwareDatetime = Field(description="Rounded up to the hour; within 90 days of opening.")
    results_live: bool = False
    min_answers: int | None = Field(
        None, ge=1, le=1_000_000, description="Below this many answers no result is shown (default and floor: k)."
    )
    note: str | None = Field(None, max_length=5000)


class BallotUpdate(BaseModel):
    """A change to a ballot: only the fields sent change. Before it opens, any of these; once it opens, only
    `note` and `closes_at` (a change to another is refused, 409, field by field). A field no change may name
    (kind, audience, groups, petition) is refused 422, not ignored: a 200 would tell the client the poll is now
    put to others while it still is not."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, max_length=1000)
    options: list[str] | None = Field(None, max_length=200, description="As when creating; none for the scale.")
    max_choices: int | None = Field(None, ge=1, le=100)
    opens_at: AwareDatetime | None = Field(None, description="Rounded down to the hour; null or past: now.")
    closes_at: AwareDatetime | None = Field(None, description="Rounded up to the hour; within 90 days of opening.")
    results_live: bool | None = None
    min_answers: int | None = Field(None, ge=1, le=1_000_000)
    note: str | None = Field(None, max_length=5000, description="Null or empty: no note.")


class BallotOptionRead(BaseModel):
    position: int
    label: str


class BallotGroupRead(BaseModel):
    id: int
    kind: GroupKind
    name: str


class BallotKeyRead(BaseModel):
    key_id: str = Field(description="SHA-256 (hex) of the SPKI.")
    spki: str = Field(description="The ballot's RSA blind-signing key (RFC 9474), SPKI DER, base64url.")
    destroyed: bool = Field(description="The private half was erased after the close: no credential can be made.")


class BallotSignerKeyRead(BaseModel):
    key_id: str = Field(description="SHA-256 (hex) of the SPKI; entry 0 of the petition's log names it.")
    spki: str = Field(description="The petition's signers' RSA blind-signing key (RFC 9474), SPKI DER, base64url.")


class BallotRead(BaseModel):
    id: int
    petition_id: int | None
    response_id: int | None = Field(description="Set for a ratification ballot: the response it asks about.")
    kind: BallotKind
    audience: BallotAudience
    groups: list[BallotGroupRead] = Field(
        description="Audience `groups`: the departments and locations whose members may answer (entry 0 of the log "
        "commits them); empty for the other audiences."
    )
    question: str
    note: str | None
    options: list[BallotOptionRead]
    max_choices: int
    opens_at: datetime
    closes_at: datetime
    closed_early: bool
    state: BallotState
    results_live: bool
    min_answers: int
    credentials_issued: int = Field(description="Credentials made for this ballot: each answer hides among them.")
    answers_counted: int = Field(description="Distinct credentials whose answer is counted.")
    breakdown: bool = Field(
        False, description="Whether an answer may name a group and the result is broken down by them at close."
    )
    key: BallotKeyRead
    signer_key: BallotSignerKeyRead | None = Field(
        description="A signers' ballot: the petition's signers' key (public half, kept after the petition "
        "closes), under which a wallet finalizes the signer credential it exchanges for this ballot's; "
        "null for a members' ballot."
    )

    @classmethod
    def of(
        cls,
        ballot: Ballot,
        labels: list[str],
        now: datetime,
        signer_key: SignerKey | None = None,
        groups: Sequence[SignerGroup] = (),
    ) -> BallotRead:
        return cls(
            id=ballot.id,
            petition_id=ballot.petition_id,
            response_id=ballot.response_id,
            kind=ballot.kind,
            audience=ballot.audience,
            groups=[BallotGroupRead(id=group.id, kind=group.kind, name=group.name) for group in groups],
            question=ballot.question,
            note=ballot.note,
            options=[BallotOptionRead(position=i, label=label) for i, label in enumerate(labels)],
            max_choices=ballot.max_choices,
            opens_at=ballot.opens_at,
            closes_at=ballot.closes_at,
            closed_early=ballot.closed_early,
            state=ballot.state_at(now),
            results_live=ballot.results_live,
            min_answers=ballot.min_answers,
            credentials_issued=ballot.credentials_issued,
            answers_counted=ballot.answers_counted,
            breakdown=audiences.breaks_down(ballot, len(groups)),
            key=BallotKeyRead(
                key_id=ballot.key_id, spki=b64url.encode(ballot.spki), destroyed=ballot.sealed_private is None
            ),
            signer_key=None
            if signer_key is None or ballot.audience != BallotAudience.signers
            else BallotSignerKeyRead(key_id=signer_key.key_id, spki=b64url.encode(bytes(signer_key.spki))),
        )


class BallotOptionResult(BaseModel):
    position: int
    label: str
    count: int = Field(description="Answers choosing it (ranked: first preferences).")
    share: float = Field(description="Of the answers counted, 0 to 1.")


class BallotRoundRead(BaseModel):
    number: int
    counts: list[int | None] = Field(description="Per option, by position; null once eliminated.")
    continuing: int
    exhausted: int
    eliminated: int | None


class BallotBreakdownRowRead(BaseModel):
    group: int | None = Field(description="The department or location (null: the answers counted under none).")
    kind: GroupKind | None
    name: str
    counts: list[int | None] = Field(
        description="Answers choosing each option, by position (ranked: first preferences); null: suppressed, "
        "because it or a cell it would reveal holds fewer than `min_group_size` answers."
    )


class BallotBreakdownRead(BaseModel):
    status: Literal["shown", "hidden", "not_enough"] = Field(
        description="hidden: until the poll closes and its last batch is in (even when its result shows live: a "
        "breakdown read while answers arrive tells each new answer's group); not_enough: below `min_answers`."
    )
    min_group_size: int = Field(description="Cells below this are suppressed, with those that would reveal them.")
    rows: list[BallotBreakdownRowRead] = Field(default_factory=list, description='Each group, then "Not given".')


class BallotResultsRead(BaseModel):
    status: Literal["shown", "hidden", "not_enough"] = Field(
        description="hidden: until `until` (the close and its last batch); not_enough: fewer answers than "
        "`min_answers`, so nothing is shown."
    )
    until: datetime | None = None
    min_answers: int
    answers: int | None = None
    options: list[BallotOptionResult] = Field(default_factory=list)
    rounds: list[BallotRoundRead] = Field(
        default_factory=list, description="Ranked ballots: every instant-runoff round."
    )
    winner: int | None = None
    breakdown: BallotBreakdownRead | None = Field(
        None,
        description="A poll put to two departments or locations or more: its result by the group each answer was "
        "counted under (null for other polls).",
    )

    @classmethod
    def of(cls, ballot: Ballot, found: counting.Results | counting.NotEnough | Hidden) -> BallotResultsRead:
        if isinstance(found, Hidden):
            return cls(status="hidden", until=found.until, min_answers=ballot.min_answers)
        if isinstance(found, counting.NotEnough):
            return cls(status="not_enough", min_answers=found.min_answers)
        return cls(
            status="shown",
            min_answers=ballot.min_answers,
            answers=found.answers,
            options=[
                BallotOptionResult(position=o.position, label=o.label, count=o.count, share=o.share)
                for o in found.options
            ],
            rounds=[
                BallotRoundRead(
                    number=r.number,
                    counts=list(r.counts),
                    continuing=r.continuing,
                    exhausted=r.exhausted,
                    eliminated=r.eliminated,
                )
                for r in found.rounds
            ],
            winner=found.winner,
        )


class BallotLeafRead(BaseModel):
    index: int
    entry: str = Field(description="The entry's canonical JSON bytes, base64url.")


class BallotLeavesRead(BaseModel):
    size: int = Field(description="The size of the latest checkpoint: no leaf beyond it is served.")
    published: int = Field(
        description="How many leaves are served: all of them once the result is shown; before, only the ballot's "
        "own entries (entry 0 and edits), since the answers would show the result to anyone who counts them."
    )
    leaves: list[BallotLeafRead]


class BallotCheckpointRead(BaseModel):
    checkpoint: str = Field(
        description="The latest checkpoint, a C2SP signed note; after the root, the lines `credentials_issued N` "
        "and `answers_counted M`."
    )
    size: int
    log_key: str = Field(description="The log's verifier key (name+keyid+base64key), named by the ballot's origin.")


class BallotAnswerCreate(BaseModel):
    message: str = Field(max_length=1024, pattern=B64URL, description="The credential's message, base64url.")
    signature: str = Field(max_length=2048, pattern=B64URL, description="The ballot key's signature on it.")
    choice: list[int] = Field(
        max_length=100, description="Option positions; ranked: in rank order, first choice first."
    )
    group: RowId | None = Field(
        None,
        description="A poll put to two departments or locations or more: one of them (your own) to count this "
        "answer under in the breakdown shown at close, or null for none. Refused (400) on another poll, for a "
        "group the poll is not put to, and while fewer than k of the group's members hold the credential.",
    )


class BallotAnswerAccepted(BaseModel):
    accepted: bool = True
    counted_at_batch: int = Field(
        description="Seconds between batches: the answer is counted with the next one (0: counted already)."
    )
