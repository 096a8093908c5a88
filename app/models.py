"""Every table, imported in one place for Alembic and the tests."""

from app.accounts.models import OneTimeCode, RoleGrant, User, UserSession
from app.anonymous.models import DiscussionIssuance, DiscussionKey, IssuingKey, SpentToken, TokenIssuance
from app.audit.models import AuditEntry, AuditHead
from app.comments.models import Comment, CommentEndorsement, CommentFlag, CommentRevision
from app.core.database import Base
from app.log.models import LogCheckpoint, LogCosignature, LogHead, LogLeaf, LogNode, LogPending
from app.mail.models import MailOptOut, OutboxMessage
from app.organization.models import EligibleAddress, OrganizationBranding, OrganizationRules
from app.petitions.models import (
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
from app.responses.models import Commitment, CommitmentUpdate, Judgement, PetitionResponse
from app.signatures.models import Invalidation, Signature, SignerGroup

__all__ = [
    "AuditEntry",
    "AuditHead",
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
    "RejectionReason",
    "RoleGrant",
    "Signature",
    "SignerGroup",
    "SpentToken",
    "Sponsorship",
    "TokenIssuance",
    "User",
    "UserSession",
]
