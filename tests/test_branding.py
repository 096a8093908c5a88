"""The organization's look: an admin sets its name, logo and accent colour; every page's header shows them.

The logo upload is tested by an adversary: SVG files that carry a script, an event handler, a foreign object, a
reference to another address, an entity declaration or a style, each refused in words with nothing saved; and the
logo as served runs nothing even when opened on its own.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.models.accounts import Role
from app.models.audit import AuditEntry
from app.models.organization import OrganizationBranding
from app.organization import branding
from tests.conftest import Browser, make_user, sign_in_as

pytestmark = pytest.mark.one_database


def png(width: int = 40, height: int = 20) -> bytes:
    """A valid PNG of one grey colour (the smallest well-formed file the checks accept)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        branding.PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


CLEAN_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40"><title>Acme</title>'
    b'<defs><linearGradient id="g"><stop offset="0" stop-color="#0b5cad"/></linearGradient></defs>'
    b'<rect width="120" height="40" fill="url(#g)"/><text x="10" y="28" font-size="20">Acme</text></svg>'
)


@pytest.fixture
def admin(browser: Browser, db) -> Browser:
    sign_in_as(
        browser, db, make_user(db, email="root@example.org", name="Morgan Root", password=None, roles=(Role.admin,))
    )
    return browser


def save(
    admin: Browser,
    *,
    name: str = "",
    accent: str = "",
    logo: tuple[str, bytes, str] | None = None,
    remove: bool = False,
):
    data = {"name": name, "accent_colour": accent}
    if remove:
        data["remove_logo"] = "yes"
    files = {"logo": logo} if logo else {"logo": ("", b"", "application/octet-stream")}
    return admin.post("/admin/branding", data, files=files)


def saved(db) -> OrganizationBranding | None:
    db.expire_all()
    return db.get(OrganizationBranding, branding.ROW_ID)


def test_an_admin_sets_the_name_logo_and_colour_and_every_page_shows_them(admin: Browser, client, db) -> None:
    reply = save(admin, name="Acme  Workers", accent="#7A1F5C", logo=("logo.png", png(), "image/png"))
    assert reply.status_code == 303, reply.text
    row = saved(db)
    assert row is not None and row.name == "Acme Workers" and row.accent_colour == "#7a1f5c"
    assert row.logo_type == "image/png" and (row.logo_width, row.logo_height) == (64, 32)
    assert row.logo_hash is not None

    # A visitor, signed out, sees them in the header of any page, and in the title.
    visitor = client.__class__(client.app, base_url="http://testserver")
    home = visitor.get("/petitions").text
    assert "<span>Acme Workers</span>" in home and "· Acme Workers</title>" in home
    assert "<span>Acme Workers</span>" in visitor.get("/").text  # the home page too (its router has the health checks)
    assert visitor.get("/healthz").json() == {"status": "ok"}
    logo_url = f"/organization/logo?v={row.logo_hash[:16]}"
    style_url = "/organization/style.css?v=7a1f5c"
    assert f'src="{logo_url}"' in home and f'href="{style_url}"' in home
    served = visitor.get(logo_url)
    assert served.status_code == 200 and served.content == png()
    assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
    style = visitor.get(style_url)
    assert style.headers["content-type"].startswith("text/css") and "--accent: #7a1f5c;" in style.text

    # The audit log says it in words.
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "branding.changed"))
    assert entry is not None
    log = admin.get("/admin/audit").text
    assert (
        "Morgan Root changed the organization&#39;s look: accent colour from — to #7a1f5c; logo from — to "
        f"{row.logo_hash[:16]} (image/png); name from — to Acme Workers." in log
    )

    # Removing the logo and the colour goes back to the defaults.
    assert save(admin, name="Acme Workers", remove=True).status_code == 303
    row = saved(db)
    assert row is not None and row.logo is None and row.accent_colour is None
    page = visitor.get("/petitions").text
    assert "/organization/logo" not in page and "/organization/style.css" not in page
    assert visitor.get(logo_url).status_code == 404


def test_an_accent_colour_below_wcag_aa_is_refused_with_its_ratio(admin: Browser, db) -> None:
    reply = save(admin, accent="#f2b705")  # the focus yellow: 1.8:1 on white, 1.58:1 on the blue notices
    assert reply.status_code == 422
    assert "The accent colour #f2b705 has a contrast of only 1.58:1 against the blue notices" in reply.text
    assert "needs at least 4.5:1 (WCAG AA)" in reply.text
    assert 'value="#f2b705"' in reply.text  # kept, to correct
    # Enough on white, not on the blue notices the colour also sits on: still refused.
    assert branding.contrast("#6f6f6f", "#ffffff") >= 4.5 > branding.contrast("#6f6f6f", "#e8f0fa")
    assert "only 4.37:1 against the blue notices" in save(admin, accent="#6f6f6f").text
    assert saved(db) is None
    assert save(admin, accent="not a colour").status_code == 422
    assert save(admin, accent="#0b5cad").status_code == 303


def test_contrast_follows_wcag() -> None:
    assert branding.contrast("#000000", "#ffffff") == pytest.approx(21)
    assert branding.contrast("#ffffff", "#ffffff") == pytest.approx(1)
    # WCAG's own example boundary: #767676 is the lightest grey that meets 4.5:1 on white.
    assert branding.contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert branding.contrast("#777777", "#ffffff") < 4.5


HOSTILE_SVGS = {
    "a script": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><script>alert(1)</script></svg>',
        "holds a &lt;script&gt; element",
    ),
    "an event handler": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)"/>',
        "has an event handler (onload)",
    ),
    "a foreign object": (
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><foreignObject>'
            b'<div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject></svg>'
        ),
        "holds a &lt;foreignObject&gt; element",
    ),
    "an external reference": (
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            b'viewBox="0 0 10 10"><use xlink:href="https://evil.example/x.svg#a"/></svg>'
        ),
        "refers to another file or address",
    ),
    "a javascript link": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><use href="javascript:alert(1)"/></svg>',
        "refers to another file or address",
    ),
    "an external fill": (
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
            b'<rect width="5" height="5" fill="url(https://evil.example/track)"/></svg>'
        ),
        "refers to another file or address",
    ),
    "a style": (
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="5" height="5" '
            b'style="fill:url(https://evil.example/t)"/></svg>'
        ),
        "has a “style” attribute",
    ),
    "a style element": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><style>@import url(x)</style></svg>',
        "holds a &lt;style&gt; element",
    ),
    "an embedded picture": (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><image href="data:,x"/></svg>',
        "holds a &lt;image&gt; element",
    ),
    "an external entity": (
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text>&x;</text></svg>'
        ),
        "declares a document type or entities",
    ),
    "entity expansion": (
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text>&b;</text></svg>'
        ),
        "declares a document type or entities",
    ),
    "a processing instruction": (
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
            b'<?xml-stylesheet href="https://evil.example/s.css"?></svg>'
        ),
        "processing instructions",
    ),
    "an HTML page": (b"<html><body><script>alert(1)</script></body></html>", "is not an SVG image"),
    "a broken file": (b'<svg xmlns="http://www.w3.org/2000/svg"><rect', "not well-formed XML"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_SVGS))
def test_a_hostile_svg_is_refused_in_words_and_nothing_is_saved(admin: Browser, db, kind: str) -> None:
    content, words = HOSTILE_SVGS[kind]
    reply = save(admin, name="Acme", logo=("logo.svg", content, "image/svg+xml"))
    assert reply.status_code == 422, kind
    assert words in reply.text, reply.text
    assert saved(db) is None  # not even the name: nothing half-written
    assert not db.scalars(select(AuditEntry)).all()


def test_a_clean_svg_is_kept_as_the_server_wrote_it_and_served_so_it_runs_nothing(admin: Browser, client, db) -> None:
    assert save(admin, logo=("logo.svg", CLEAN_SVG, "image/svg+xml")).status_code == 303
    row = saved(db)
    assert row is not None and row.logo_hash is not None
    assert row.logo_type == "image/svg+xml" and (row.logo_width, row.logo_height) == (96, 32)
    served = client.get(f"/organization/logo?v={row.logo_hash[:16]}")
    assert served.headers["content-type"] == "image/svg+xml"
    policy = served.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert served.content.startswith(b"<?xml") and b"<text" in served.content and b"url(#g)" in served.content
    # Written back from the parsed tree: re-checking it changes nothing.
    assert branding.check_svg(served.content).content == served.content


def test_a_damaged_or_oversized_png_is_refused(admin: Browser, db) -> None:
    good = png()
    truncated = save(admin, logo=("logo.png", good[:-12], "image/png"))
    assert truncated.status_code == 422 and "damaged or incomplete" in truncated.text
    tampered = bytearray(good)
    tampered[20] ^= 0xFF  # the header's width, without its checksum
    assert "damaged or incomplete" in save(admin, logo=("logo.png", bytes(tampered), "image/png")).text
    huge = good + b"\x00" * branding.MAX_LOGO_BYTES
    assert "at most 256 KB" in save(admin, logo=("logo.png", huge, "image/png")).text
    assert "at most 4096 pixels" in save(admin, logo=("logo.png", png(5000, 1), "image/png")).text
    assert saved(db) is None


def test_only_admins_change_the_look(browser: Browser, db) -> None:
    worker = make_user(db, email="kai@example.org", name="Kai", password=None)
    sign_in_as(browser, db, worker)
    assert save(browser, name="Hijacked").status_code == 403
    assert saved(db) is None


def _with_header(length: int, header: bytes) -> bytes:
    """A PNG whose header chunk claims `length` bytes and holds `header`, with a correct checksum of what it holds."""
    return (
        branding.PNG_SIGNATURE
        + struct.pack(">I", length)
        + b"IHDR"
        + header
        + struct.pack(">I", zlib.crc32(b"IHDR" + header))
        + b"\x00" * 16
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def _svg(size: bytes) -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" ' + size + b'><rect width="1" height="1"/></svg>'


# Found by the adversarial review (F1): a 4 GB header length and a 400-digit SVG size answered 500 with a traceback.
MALFORMED_LOGOS = {
    "a PNG header claiming 4 GB": (_with_header(0xFFFFFFF0, b"\x00" * 13), "damaged or incomplete"),
    "a PNG header claiming no bytes": (_with_header(0, b""), "damaged or incomplete"),
    "a PNG header one byte short": (
        _with_header(12, struct.pack(">II", 40, 20) + b"\x08\x00\x00\x00"),
        "damaged or incomplete",
    ),
    "a PNG 0 pixels wide": (png(0, 20), "at most 4096 pixels"),
    "a PNG 4 billion pixels tall": (
        _with_header(13, struct.pack(">IIBBBBB", 40, 0xFFFFFFFF, 8, 0, 0, 0, 0)),
        "at most 4096 pixels",
    ),
    "an SVG 400 digits wide": (_svg(b'width="' + b"9" * 400 + b'" height="10"'), "must be numbers from 0.01"),
    "an SVG viewBox 400 digits wide": (_svg(b'viewBox="0 0 ' + b"9" * 400 + b' 10"'), "must be numbers from 0.01"),
    "an SVG viewBox of negative width": (_svg(b'viewBox="0 0 -120 40"'), "must be numbers from 0.01"),
    "an SVG of negative height": (_svg(b'width="10" height="-1"'), "must be numbers from 0.01"),
    "an SVG a thousandth of a unit tall": (_svg(b'width="10" height="1e-3"'), "must be numbers from 0.01"),
    "an SVG 1e999 wide": (_svg(b'viewBox="0 0 1e999 10"'), "must be numbers from 0.01"),
    "an SVG NaN wide": (_svg(b'width="NaN" height="inf"'), "needs a viewBox"),
    "an SVG viewBox naming infinity": (_svg(b'viewBox="0 0 inf 10"'), "needs a viewBox"),
    "an SVG viewBox of three numbers": (_svg(b'viewBox="0 0 1e999"'), "needs a viewBox"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_LOGOS))
def test_a_malformed_logo_is_refused_in_words_not_with_a_server_error(admin: Browser, db, kind: str) -> None:
    content, words = MALFORMED_LOGOS[kind]
    reply = save(admin, name="Acme", logo=("logo", content, "application/octet-stream"))
    assert reply.status_code == 422, (kind, reply.status_code)
    assert words in reply.text, reply.text
    assert saved(db) is None


def test_a_thin_svg_keeps_its_proportions_within_the_header() -> None:
    # Rounded to whole units first, 0.4 by 0.6 read as square, and 10 by 0.1 as 10 by 0: a division by zero (500).
    def header(size: bytes) -> tuple[int, int]:
        logo = branding.check_svg(_svg(size))
        return branding.header_size(logo.width, logo.height)

    assert header(b'viewBox="0 0 0.4 0.6"') == (21, 32)
    assert header(b'width="10" height="0.1"') == (128, 32)  # at most four times as wide as tall
    assert header(b'width="0.01" height="1e5"') == (1, 32)
    assert header(b'viewBox="-5,-5,1.2E2,40"') == (96, 32)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_damage_to_a_logo_is_either_accepted_or_refused_in_words(data: st.DataObject) -> None:
    """Fuzzing the checks directly: cut, flip or splice bytes of a good PNG or SVG; never anything but Refused."""
    original = data.draw(st.sampled_from([png(), png(1, 4096), CLEAN_SVG, _svg(b'viewBox="0 0 1 1"')]))
    damage = data.draw(st.sampled_from(["cut", "flip", "splice"]))
    content = bytearray(original)
    if damage == "cut":
        content = content[: data.draw(st.integers(0, len(content)))]
    elif damage == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    else:
        at = data.draw(st.integers(0, len(content)))
        content[at:at] = data.draw(
            st.one_of(
                st.binary(max_size=40),
                st.sampled_from([b"9" * 400, b"-1", b"NaN", b"1e999", b"0", b"\xff\xff\xff\xff", b"\x00" * 13]),
            )
        )
    try:
        logo = branding.check_logo(bytes(content))
    except branding.Refused as refusal:
        assert refusal.template  # words, in the translators' catalog
    else:
        width, height = branding.header_size(logo.width, logo.height)
        assert 1 <= width <= 4 * branding.LOGO_HEIGHT and height == branding.LOGO_HEIGHT
