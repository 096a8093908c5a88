"""Every table, imported in one place for Alembic and the tests."""

from app.core.database import Base
from app.models.accounts import OneTimeCode, RoleGrant, User, UserSession
from app.models.anonymous import (
    DiscussionIssuance,
    DiscussionKey,
    IssuingKey,
    SignerIssuance,
    SignerKey,
    SignerReply,
    SpentToken,
    TokenIssuance,
)
from app.models.audit import AuditEntry, AuditHead
from app.models.ballots import (
    Ballot,
    BallotAnswer,
    BallotCheckpoint,
    BallotExchange,
    BallotIssuance,
    BallotLeaf,
    BallotOption,
)
from app.models.comments import Comment, CommentEndorsement, CommentFlag, CommentRevision
from app.models.log import LogCheckpoint, LogCosignature, LogHead, LogLeaf, LogNode, LogPending
from app.models.mail import MailOptOut, OutboxMessage, PollMailOptOut
from app.models.organization import EligibleAddress, OrganizationBranding, OrganizationRules
from app.models.petitions import (
    Category,
    Delivery,
    Follow,
    Notification,
    Petition,
    PetitionEvent,
    PetitionOrganizer,
    PetitionUpdate,
    PetitionVersion,
    RejectionReason,
    Sponsorship,
)
from app.models.responses import Commitment, CommitmentUpdate, Judgement, PetitionResponse
from app.models.signatures import Invalidation, Signature, SignerGroup

__all__ = [
    "AuditEntry",
    "AuditHead",
    "Ballot",
    "BallotAnswer",
    "BallotCheckpoint",
    "BallotExchange",
    "BallotIssuance",
    "BallotLeaf",
    "BallotOption",
    "Base",
    "Category",
    "Comment",
    "CommentEndorsement",
    "CommentFlag",
    "CommentRevision",
    "Commitment",
    "CommitmentUpdate",
    "Delivery",
    "DiscussionIssuance",
    "DiscussionKey",
    "EligibleAddress",
    "Follow",
    "Invalidation",
    "IssuingKey",
    "Judgement",
    "LogCheckpoint",
    "LogCosignature",
    "LogHead",
    "LogLeaf",
    "LogNode",
    "LogPending",
    "MailOptOut",
    "Notification",
    "OneTimeCode",
    "OrganizationBranding",
    "OrganizationRules",
    "OutboxMessage",
    "Petition",
    "PetitionEvent",
    "PetitionOrganizer",
    "PetitionResponse",
    "PetitionUpdate",
    "PetitionVersion",
    "PollMailOptOut",
    "RejectionReason",
    "RoleGrant",
    "Signature",
    "SignerGroup",
    "SignerIssuance",
    "SignerKey",
    "SignerReply",
    "SpentToken",
    "Sponsorship",
    "TokenIssuance",
    "User",
    "UserSession",
]
