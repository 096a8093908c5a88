"""The organization's look: its name, logo and accent colour, set by an admin and shown in every page's header.

A logo is either a PNG, checked by its signature, its header chunk and a size limit, or an SVG read with the
standard library's XML parser and accepted only if every element and attribute is on a short allow-list: no
scripts, event handlers, styles, foreign objects, or references outside the file. What is kept is the SVG the
server writes back from the parsed tree, not the file as uploaded. It is served with a Content-Security-Policy
that forbids scripts anyway, as a second wall.

An accent colour is refused below WCAG AA contrast (4.5:1) against the backgrounds it is shown on, with white
text on it (buttons) and as link text on the page.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree
from xml.parsers import expat

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.clock import to_the_hour
from app.core.errors import InvalidInput
from app.core.i18n import N_
from app.core.runtime import Runtime
from app.models.accounts import User
from app.models.organization import OrganizationBranding

ROW_ID = 1
CACHE_KEY = "organization-branding"
# Other server processes show a change within this many seconds.
CACHE_SECONDS = 10.0
MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_PIXELS = 4096
# An SVG's width and height (or viewBox), in its own units.
MIN_SVG_SIZE = 0.01
MAX_SVG_SIZE = 100_000
MAX_NAME = 80
# The header shows the logo this tall (CSS px); the width follows the logo's proportions, within reason.
LOGO_HEIGHT = 32
MIN_CONTRAST = 4.5
# The backgrounds the accent colour sits on (app/static/style.css): the page, the grey wash and the info flash,
# the lightest of which is also the text colour on accent buttons (white).
BACKGROUNDS = {"#ffffff": N_("white"), "#f4f5f7": N_("the light grey panels"), "#e8f0fa": N_("the blue notices")}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
COLOUR = re.compile(r"#[0-9a-f]{6}")
# A number as SVG writes one; float() reads it (too many digits read as infinity, refused by size).
NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


@dataclass(frozen=True)
class Branding:
    name: str | None = None
    accent_colour: str | None = None
    logo_type: str | None = None
    logo_hash: str | None = None
    logo_width: int = 0
    logo_height: int = 0

    @property
    def logo_url(self) -> str | None:
        # Versioned by the logo's hash, so browsers may keep it for good and a new logo shows at once.
        return f"/organization/logo?v={self.logo_hash[:16]}" if self.logo_hash else None

    @property
    def style_url(self) -> str | None:
        return f"/organization/style.css?v={self.accent_colour[1:]}" if self.accent_colour else None


@dataclass(frozen=True)
class Logo:
    content: bytes
    media_type: str
    # In pixels for a PNG; in the SVG's own units (proportions only) for an SVG.
    width: float
    height: float


def _load(db: Session) -> Branding:
    row = db.get(OrganizationBranding, ROW_ID)
    if row is None:
        return Branding()
    return Branding(
        name=row.name,
        accent_colour=row.accent_colour,
        logo_type=row.logo_type,
        logo_hash=row.logo_hash,
        logo_width=row.logo_width or 0,
        logo_height=row.logo_height or 0,
    )


def current(*, db: Session, rt: Runtime) -> Branding:
    """The branding in force, remembered by each process for a few seconds (read on every page)."""
    return rt.cache.get(CACHE_KEY, lambda: _load(db), ttl=CACHE_SECONDS)


def logo(*, db: Session) -> tuple[bytes, str, str] | None:
    """The logo's bytes, media type and hash, or None."""
    row = db.get(OrganizationBranding, ROW_ID)
    if row is None or row.logo is None or row.logo_type is None or row.logo_hash is None:
        return None
    return row.logo, row.logo_type, row.logo_hash


# -- colour contrast (WCAG 2.x relative luminance) -------------------------------------------------------------


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two #rrggbb colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def check_accent(value: str) -> str | None:
    """The colour as #rrggbb, None for the default; refused in words below WCAG AA on any of its backgrounds."""
    colour = value.strip().lower()
    if not colour:
        return None
    if not colour.startswith("#"):
        colour = "#" + colour
    if re.fullmatch(r"#[0-9a-f]{3}", colour):
        colour = "#" + "".join(digit * 2 for digit in colour[1:])
    if not COLOUR.fullmatch(colour):
        raise Refused(
            N_("Give the accent colour as # and six hexadecimal digits, such as #0b5cad."), field="accent_colour"
        )
    background, ratio = min(
        ((name, contrast(colour, background)) for background, name in BACKGROUNDS.items()), key=lambda pair: pair[1]
    )
    if ratio < MIN_CONTRAST:
        message = N_(
            "The accent colour %(colour)s has a contrast of only %(ratio)s:1 against %(background)s; text in it "
            "needs at least 4.5:1 (WCAG AA). Choose a darker colour."
        )
        # Rounded down, so a colour just under the bar never reads as meeting it.
        raise Refused(
            message, field="accent_colour", colour=colour, ratio=f"{int(ratio * 100) / 100:.2f}", background=background
        )
    return colour


def darker(colour: str, amount: float = 0.2) -> str:
    """The colour mixed with black: the hover shade of buttons and links, with more contrast still."""
    red, green, blue = (round(int(colour[i : i + 2], 16) * (1 - amount)) for i in (1, 3, 5))
    return f"#{red:02x}{green:02x}{blue:02x}"


def stylesheet(accent: str) -> str:
    return f":root {{ --accent: {accent}; --accent-dark: {darker(accent)}; }}\n"


# -- logos -------------------------------------------------------------------------------------------------------


class Refused(InvalidInput):
    """A refusal whose words carry values: pages translate the words first, then fill the values in."""

    def __init__(self, message: str, *, field: str, **params: object) -> None:
        super().__init__(message % params, fields={field: message % params})
        self.template, self.field, self.params = message, field, params

    def translated(self, translate: Callable[[str], str]) -> InvalidInput:
        # Words among the values (a background's name) are translated too; others (a colour) stay as they are.
        text = translate(self.template) % {
            name: translate(value) if isinstance(value, str) else value for name, value in self.params.items()
        }
        return InvalidInput(text, fields={self.field: text})


def _refuse(message: str, **params: object) -> Refused:
    return Refused(message, field="logo", **params)


def check_png(content: bytes) -> Logo:
    """A PNG whose signature, header chunk (with its checksum) and end chunk are where they belong."""
    if len(content) < 45 or not content.startswith(PNG_SIGNATURE) or content[12:16] != b"IHDR":
        raise _refuse(N_("This file is not a PNG image. Upload a PNG or an SVG file."))
    # The header chunk is 13 bytes long by definition: the length the file claims is checked before it is used to
    # read anything (a claimed 4 GB length read the checksum from past the end of the file).
    (length,) = struct.unpack(">I", content[8:12])
    (checksum,) = struct.unpack(">I", content[29:33])
    if length != 13 or zlib.crc32(content[12:29]) != checksum or not content.endswith(b"IEND\xaeB`\x82"):
        raise _refuse(N_("This PNG file is damaged or incomplete. Export it again and upload it."))
    width, height = struct.unpack(">II", content[16:24])
    if not (0 < width <= MAX_LOGO_PIXELS and 0 < height <= MAX_LOGO_PIXELS):
        raise _refuse(N_("The logo may be at most %(pixels)s pixels wide and tall."), pixels=MAX_LOGO_PIXELS)
    return Logo(content=content, media_type="image/png", width=width, height=height)


# What an SVG logo may hold: shapes, paths, text, groups, gradients and clipping. Not: script, style,
# foreignObject, image, a, use of another file, animation, iframe, or anything else.
SVG_ELEMENTS = frozenset(
    {
        "svg",
        "g",
        "path",
        "rect",
        "circle",
        "ellipse",
        "line",
        "polyline",
        "polygon",
        "text",
        "tspan",
        "title",
        "desc",
        "defs",
        "linearGradient",
        "radialGradient",
        "stop",
        "clipPath",
        "use",
        "symbol",
    }
)
SVG_ATTRIBUTES = frozenset(
    {
        "id",
        "viewBox",
        "width",
        "height",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "d",
        "points",
        "fill",
        "fill-opacity",
        "fill-rule",
        "stroke",
        "stroke-width",
        "stroke-opacity",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-dasharray",
        "stroke-dashoffset",
        "opacity",
        "transform",
        "preserveAspectRatio",
        "version",
        "offset",
        "stop-color",
        "stop-opacity",
        "gradientUnits",
        "gradientTransform",
        "spreadMethod",
        "fx",
        "fy",
        "clip-path",
        "clip-rule",
        "clipPathUnits",
        "font-family",
        "font-size",
        "font-weight",
        "font-style",
        "text-anchor",
        "dominant-baseline",
        "letter-spacing",
        "dx",
        "dy",
        "href",
        "role",
        "aria-label",
        "aria-hidden",
        "focusable",
    }
)
# Attribute values may point at something only inside the file: url(#id) and href="#id".
EXTERNAL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)


def _refuse_doctype(*_args: object) -> None:
    raise _refuse(N_("The SVG file declares a document type or entities, which a logo may not have."))


def _refuse_instruction(*_args: object) -> None:
    raise _refuse(N_("The SVG file holds processing instructions, which a logo may not have."))


def _parse_svg(content: bytes) -> ElementTree.Element:
    # A first pass with expat alone refuses DOCTYPE and entity declarations, before ElementTree expands anything
    # (so no "billion laughs" and no external entities).
    guard = expat.ParserCreate()
    guard.StartDoctypeDeclHandler = _refuse_doctype
    guard.EntityDeclHandler = _refuse_doctype
    guard.ExternalEntityRefHandler = _refuse_doctype  # type: ignore[assignment]
    guard.ProcessingInstructionHandler = _refuse_instruction
    try:
        guard.Parse(content, True)
        return ElementTree.fromstring(content)
    except (expat.ExpatError, ElementTree.ParseError):
        raise _refuse(N_("This SVG file is not well-formed XML. Export it again and upload it.")) from None


def _local(name: str, namespaces: tuple[str, ...]) -> str | None:
    for namespace in namespaces:
        if name.startswith(namespace):
            return name[len(namespace) :]
    return None if name.startswith("{") else name


def _length(value: str | None) -> float | None:
    match = re.fullmatch(rf"\s*({NUMBER})\s*(px)?\s*", value or "")
    return float(match.group(1)) if match else None


def _view_box(value: str | None) -> list[float]:
    """The viewBox's four numbers, or none if it is not four numbers (not "1e999" read as 1 and 999)."""
    parts = re.split(r"[\s,]+", (value or "").strip())
    if len(parts) != 4 or not all(re.fullmatch(NUMBER, part) for part in parts):
        return []
    return [float(part) for part in parts]


def check_svg(content: bytes) -> Logo:
    """The SVG written back from its parsed tree, if everything in it is on the allow-list; refused in words if not."""
    root = _parse_svg(content)
    if _local(root.tag, (SVG,)) != "svg" or not root.tag.startswith(SVG):
        raise _refuse(N_("This file is not an SVG image. Upload a PNG or an SVG file."))
    for element in root.iter():
        name = _local(element.tag, (SVG,))
        if name not in SVG_ELEMENTS:
            raise _refuse(
                N_(
                    "The SVG file holds a <%(element)s> element, which a logo may not have (allowed: shapes, "
                    "paths, text, groups and gradients)."
                ),
                element=name or element.tag,
            )
        for attribute, value in element.attrib.items():
            local = _local(attribute, (XLINK,))
            if local is None or local not in SVG_ATTRIBUTES:
                if (local or attribute).lower().startswith("on"):
                    raise _refuse(
                        N_("The SVG file has an event handler (%(attribute)s), which a logo may not have."),
                        attribute=local or attribute,
                    )
                raise _refuse(
                    N_("The SVG file has a “%(attribute)s” attribute, which a logo may not have."),
                    attribute=local or attribute,
                )
            if local == "href" and not value.strip().startswith("#"):
                raise _refuse(
                    N_("The SVG file refers to another file or address (%(value)s), which a logo may not."),
                    value=value[:60],
                )
            if EXTERNAL.search(value) or "javascript:" in value.lower():
                raise _refuse(
                    N_("The SVG file refers to another file or address (%(value)s), which a logo may not."),
                    value=value[:60],
                )
    width, height = _length(root.get("width")), _length(root.get("height"))
    view_box = _view_box(root.get("viewBox"))
    if (width is None or height is None) and len(view_box) == 4:
        width, height = view_box[2], view_box[3]
    if not width or not height:
        raise _refuse(N_("The SVG file needs a viewBox (or a width and height) so it can be sized in the header."))
    # Only the proportions matter, but they are read as numbers: 400 digits read as infinity, a negative viewBox
    # or a hair-thin one would make no sense of them.
    if not (MIN_SVG_SIZE <= width <= MAX_SVG_SIZE and MIN_SVG_SIZE <= height <= MAX_SVG_SIZE):
        raise _refuse(
            N_("The SVG file's width and height (or its viewBox) must be numbers from %(least)s to %(most)s."),
            least=MIN_SVG_SIZE,
            most=MAX_SVG_SIZE,
        )
    ElementTree.register_namespace("", SVG[1:-1])
    ElementTree.register_namespace("xlink", XLINK[1:-1])
    written = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return Logo(content=written, media_type="image/svg+xml", width=width, height=height)


def check_logo(content: bytes) -> Logo:
    if len(content) > MAX_LOGO_BYTES:
        raise _refuse(N_("The logo may be at most %(size)s KB."), size=MAX_LOGO_BYTES // 1024)
    if content.startswith(PNG_SIGNATURE):
        return check_png(content)
    return check_svg(content)


def header_size(width: float, height: float) -> tuple[int, int]:
    """The logo's size in the header: LOGO_HEIGHT tall, at most four times as wide."""
    return min(LOGO_HEIGHT * 4, max(1, round(LOGO_HEIGHT * width / height))), LOGO_HEIGHT


# -- saving -------------------------------------------------------------------------------------------------------


def update(
    *, db: Session, rt: Runtime, actor: User, name: str, accent: str, upload: bytes | None, remove_logo: bool
) -> list[str]:
    """Save what changed and record it in the audit log (the logo by its fingerprint); returns the changed names."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise Refused(N_("The name may be at most %(limit)s characters."), field="name", limit=MAX_NAME)
    colour = check_accent(accent)
    new_logo = check_logo(upload) if upload else None
    row = db.get(OrganizationBranding, ROW_ID, with_for_update=True)
    if row is None:
        row = OrganizationBranding(id=ROW_ID)
        db.add(row)
    changed: dict[str, dict[str, object]] = {}
    if (row.name or None) != (name or None):
        changed["name"] = {"from": row.name, "to": name or None}
        row.name = name or None
    if row.accent_colour != colour:
        changed["accent_colour"] = {"from": row.accent_colour, "to": colour}
        row.accent_colour = colour
    if new_logo is not None:
        digest = hashlib.sha256(new_logo.content).hexdigest()
        if digest != row.logo_hash:
            changed["logo"] = {
                "from": row.logo_hash and row.logo_hash[:16],
                "to": f"{digest[:16]} ({new_logo.media_type})",
            }
            width, height = header_size(new_logo.width, new_logo.height)
            row.logo, row.logo_type, row.logo_hash = new_logo.content, new_logo.media_type, digest
            row.logo_width, row.logo_height = width, height
    elif remove_logo and row.logo_hash:
        changed["logo"] = {"from": row.logo_hash[:16], "to": None}
        row.logo = row.logo_type = row.logo_hash = None
        row.logo_width = row.logo_height = None
    if not changed:
        return []
    row.updated_at = to_the_hour(rt.clock.now())
    row.updated_by_id = actor.id
    db.flush()
    audit.record(db=db, rt=rt, actor=actor, action="branding.changed", subject="organization look", detail=changed)
    rt.cache.forget_changed(db, CACHE_KEY)
    return list(changed)
