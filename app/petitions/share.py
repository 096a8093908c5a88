"""Passing a petition on: its public address, the share row's links, and its QR code.

The share row is plain links (mail, chat, WhatsApp) and a read-only field with the address: no third-party
script, no tracker, nothing fetched from another site, so reading a petition tells no one else that it was read.
The QR code is drawn here, on the server, by segno (pure Python, no dependencies), as SVG for the page and as
the module matrix the poster draws with PDF rectangles; both are vectors, so they print sharp at any size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import segno
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.models.lifecycle import TALLIED_STATES
from app.models.petitions import Petition
from app.petitions import service

# A petition worth passing on: one colleagues can read, and whose count means something. A rejected petition stays
# readable with its reason, but the row does not invite anyone to spread it.
SHAREABLE_STATES = TALLIED_STATES
# Medium error correction: a poster on a break-room wall gets creased, folded and pinned through.
ERROR_CORRECTION = "m"


class ShareKind(StrEnum):
    petition = "petition"  # the public address, for anyone to read and sign
    sponsor = "sponsor"  # the organizers' private sponsor link, for colleagues they trust


@dataclass(frozen=True)
class ShareRow:
    """What templates/includes/_share.html shows: the address, and the QR code and poster when it is public."""

    kind: ShareKind
    url: str
    title: str
    qr: str | None = None
    poster: str | None = None
    signable: bool = False  # the petition takes signatures: the messages ask for one

    @property
    def key(self) -> str:
        """The prefix of the row's element ids (the sponsor field keeps its id, `sponsor-link`)."""
        return "share" if self.kind is ShareKind.petition else "sponsor"


def public_url(*, rt: Runtime, petition_id: int) -> str:
    return rt.settings.base_url.rstrip("/") + f"/petitions/{petition_id}"


def is_shareable(petition: Petition) -> bool:
    return petition.state in SHAREABLE_STATES


def petition_row(*, rt: Runtime, petition: Petition) -> ShareRow | None:
    if not is_shareable(petition):
        return None
    return ShareRow(
        kind=ShareKind.petition,
        url=public_url(rt=rt, petition_id=petition.id),
        title=petition.title,
        qr=f"/petitions/{petition.id}/qr.svg",
        poster=f"/petitions/{petition.id}/poster.pdf",
        signable=petition.takes_signatures,
    )


def sponsor_row(*, url: str, petition: Petition) -> ShareRow:
    # No QR code or poster: the sponsor link is for colleagues the organizers choose, not for a wall.
    return ShareRow(kind=ShareKind.sponsor, url=url, title=petition.title)


def get_shareable(*, db: Session, rt: Runtime, petition_id: int) -> Petition:
    """A petition anyone may read and pass on, whoever asks: the QR code and poster never depend on the reader, so
    a draft, a hidden petition or a withheld rejection is not found even for its organizers."""
    petition = service.get_readable(db=db, rt=rt, petition_id=petition_id, user=None)
    if not is_shareable(petition):
        raise NotFound(N_("There is no such petition."))
    return petition


@lru_cache(maxsize=256)
def _code(url: str) -> segno.QRCode:
    # Never a Micro QR code: phone cameras do not all read them.
    return segno.make_qr(url, error=ERROR_CORRECTION, boost_error=True)


def qr_matrix(url: str) -> tuple[tuple[bool, ...], ...]:
    """The code's dark (True) and light modules, row by row, without the quiet zone."""
    return tuple(tuple(bool(module) for module in row) for row in _code(url).matrix)


@lru_cache(maxsize=256)
def qr_svg(url: str, label: str) -> bytes:
    """The code as a standalone SVG, dark on white with its quiet zone, titled `label` for screen readers."""
    out = io.BytesIO()
    _code(url).save(
        out,
        kind="svg",
        scale=8,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        title=label,
        svgclass=None,
        lineclass=None,
        nl=False,
    )
    return out.getvalue()
