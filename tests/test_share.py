"""Passing a petition on (issue #22): the share row, the QR code as SVG, the A4 poster, the sponsor link's row.

The poster is rendered to an image with pdftoppm (poppler-utils), as a printer would draw it, and its QR code is
read back with zxing-cpp: it must lead to the petition's public address, whatever the title and the ask hold.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from pypdf import PdfReader

from app.models.petitions import ASK_MAX, TITLE_MAX
from app.moderation import service as moderation
from app.petitions import service
from tests import factories
from tests.conftest import Browser, missing, sign_in_as

pytestmark = pytest.mark.one_database

BASE = "http://testserver"


def address(petition_id: int) -> str:
    return f"{BASE}/petitions/{petition_id}"


def decoded(image: Image.Image) -> list[str]:
    import zxingcpp

    return [
        result.text
        for result in zxingcpp.read_barcodes(image.convert("L"))
        if result.format == zxingcpp.BarcodeFormat.QRCode
    ]


def rendered(pdf: bytes, folder: Path, *, dpi: int = 100) -> Image.Image:
    """The poster's page as pdftoppm draws it."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        missing("pdftoppm (poppler-utils) is not installed: cannot render the poster to read its QR code")
    source = folder / "poster.pdf"
    source.write_bytes(pdf)
    result = subprocess.run(
        [pdftoppm, "-png", "-r", str(dpi), "-singlefile", str(source), str(folder / "poster")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "rror" not in result.stderr, result.stderr
    with Image.open(folder / "poster.png") as image:
        image.load()
        return image


def share_row(page: str, key: str = "share") -> str:
    start = page.index(f'<section class="share" id="{key}"')
    return page[start : page.index("</section>", start)]


def links(row: str) -> dict[str, str]:
    return {unescape(text): unescape(href) for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', row)}


# -- the share row ---------------------------------------------------------------------------------------------


def test_the_petition_page_has_a_share_row_of_plain_links(browser: Browser, db, rt) -> None:
    petition = factories.open_petition(
        db, rt, title='Heat & light: "fix" the boilers', ask="Repair the heating in building B before the first frost."
    )
    page = browser.get(f"/petitions/{petition.id}").text
    row = share_row(page)
    url = address(petition.id)
    # Without JavaScript the address is in a field to select; the copy button waits for share.js.
    assert f'<input id="share-link" type="text" readonly value="{url}" data-share-link>' in row
    assert re.search(r"<button [^>]*data-share-copy hidden>Copy link</button>", row)
    assert re.search(r"<button [^>]*data-share-native [^>]*hidden>More ways to share</button>", row)
    ways = links(row)
    mail = urlsplit(ways["Email"])
    assert mail.scheme == "mailto" and not mail.path
    fields = parse_qs(mail.query)
    # The title reaches the mail as typed, not HTML-escaped ("&amp;" would be a bug a worker sees).
    assert fields["subject"] == ['Heat & light: "fix" the boilers']
    assert fields["body"] == [f'Heat & light: "fix" the boilers\n\nRead it, and sign it if you agree: {url}']
    whatsapp = urlsplit(ways["WhatsApp"])
    assert (whatsapp.scheme, whatsapp.netloc, whatsapp.path) == ("https", "wa.me", "/")
    assert parse_qs(whatsapp.query)["text"] == [f'Heat & light: "fix" the boilers {url}']
    teams = urlsplit(ways["Teams chat"])
    assert teams.netloc == "teams.microsoft.com" and parse_qs(teams.query)["href"] == [url]
    assert ways["Poster to print (A4 PDF)"] == f"/petitions/{petition.id}/poster.pdf"
    assert f'<img src="/petitions/{petition.id}/qr.svg"' in row
    # Plain links: every script and image the page loads is this site's own, so no one else learns who read it.
    assert re.findall(r'<script[^>]* src="([^"]+)"', page) and all(
        src.startswith("/static/") for src in re.findall(r'<script[^>]* src="([^"]+)"', page)
    )
    assert all(src.startswith("/") and not src.startswith("//") for src in re.findall(r'<img[^>]* src="([^"]+)"', page))
    # Below the sign panel: the ask and the Sign button keep the first screen.
    assert page.index('id="sign"') < page.index('id="share"')


def test_a_closed_petitions_row_does_not_ask_for_a_signature(browser: Browser, db, rt) -> None:
    petition = factories.closed_petition(db, rt, title="Quiet rooms on every floor")
    row = share_row(browser.get(f"/petitions/{petition.id}").text)
    body = parse_qs(urlsplit(links(row)["Email"]).query)["body"]
    assert body == [f"Quiet rooms on every floor\n\nRead it, and what came of it: {address(petition.id)}"]
    assert "Poster to print (A4 PDF)" in links(row)


@pytest.mark.parametrize("state", ["draft", "gathering_sponsors", "in_moderation"])
def test_no_share_row_before_the_petition_is_public(browser: Browser, db, rt, state: str) -> None:
    creator = factories.worker(db)
    make = {
        "draft": factories.draft_petition,
        "gathering_sponsors": factories.petition_gathering_sponsors,
        "in_moderation": factories.petition_in_moderation,
    }[state]
    petition = make(db, rt, creator)
    page = sign_in_as(browser, db, creator).get(f"/petitions/{petition.id}").text
    assert 'id="share"' not in page and "/qr.svg" not in page and "/poster.pdf" not in page


def test_the_sponsor_link_has_a_copy_button_and_a_share_row(new_browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.petition_gathering_sponsors(db, rt, creator, title="Quiet rooms on every floor")
    sponsor_url = BASE + service.sponsor_url(rt=rt, petition=petition)
    for path in (f"/petitions/{petition.id}", service.sponsor_url(rt=rt, petition=petition)):
        page = sign_in_as(new_browser(), db, creator).get(path).text
        row = share_row(page, "sponsor")
        assert f'<input id="sponsor-link" type="text" readonly value="{sponsor_url}" data-share-link>' in row
        assert "data-share-copy" in row
        ways = links(row)
        fields = parse_qs(urlsplit(ways["Email"]).query)
        assert fields["subject"] == ["Would you sponsor this petition? Quiet rooms on every floor"]
        assert sponsor_url in fields["body"][0]
        assert parse_qs(urlsplit(ways["WhatsApp"]).query)["text"] == [
            f"Would you sponsor this petition? Quiet rooms on every floor {sponsor_url}"
        ]
        # The private link is for colleagues the organizers choose: no QR code, no poster for a wall.
        assert "qr.svg" not in row and "poster.pdf" not in row
    # A colleague who opens the sponsor link is asked to sponsor, not shown the organizers' row.
    colleague = sign_in_as(new_browser(), db, factories.worker(db))
    assert 'id="sponsor"' not in colleague.get(service.sponsor_url(rt=rt, petition=petition)).text


# -- the QR code -------------------------------------------------------------------------------------------------


def test_the_qr_code_is_a_public_cacheable_svg_of_the_address(new_browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    signed_out = new_browser().get(f"/petitions/{petition.id}/qr.svg")
    assert signed_out.status_code == 200
    assert signed_out.headers["content-type"] == "image/svg+xml"
    assert signed_out.headers["cache-control"] == "public, max-age=86400"
    svg = signed_out.content
    assert svg.startswith(b"<svg") and b"<script" not in svg
    assert f"<title>QR code of the petition&#x27;s address, {address(petition.id)}</title>".encode() in svg or (
        f"<title>QR code of the petition's address, {address(petition.id)}</title>".encode() in svg
    )
    # The same bytes for every reader: nothing in it depends on who asked, so a shared cache may keep it.
    organizer = sign_in_as(new_browser(), db, creator)
    assert organizer.get(f"/petitions/{petition.id}/qr.svg").content == svg


@pytest.mark.browser
def test_the_qr_code_svg_decodes_to_the_address(chromium, new_browser, db, rt) -> None:
    petition = factories.open_petition(db, rt)
    svg = new_browser().get(f"/petitions/{petition.id}/qr.svg").text
    context = chromium.new_context(viewport={"width": 400, "height": 400})
    try:
        page = context.new_page()
        page.set_content(f"<!doctype html><body style='margin:0;background:#fff'>{svg}</body>")
        shot = page.locator("svg").screenshot()
    finally:
        context.close()
    assert decoded(Image.open(io.BytesIO(shot))) == [address(petition.id)]


@pytest.mark.parametrize("route", ["qr.svg", "poster.pdf"])
def test_the_qr_code_and_poster_exist_only_for_public_petitions(new_browser, db, rt, route: str) -> None:
    """Cacheable by anyone, so public petitions only: not even the organizers or moderators get one for a draft,
    a petition waiting for sponsors or moderators, a hidden one or a rejection whose reason is withheld."""
    creator = factories.worker(db)
    mod = factories.moderator(db)
    hidden = factories.open_petition(db, rt, creator)
    moderation.hide(db=db, rt=rt, petition=hidden, moderator=mod, reason="Names a colleague.")
    rejected = factories.petition_in_moderation(db, rt, creator)
    private_reason = next(reason for reason in moderation.rejection_reasons(db=db) if not reason.public)
    moderation.reject(db=db, rt=rt, petition=rejected, moderator=mod, code=private_reason.code, note=None)
    db.commit()
    withheld = [
        factories.draft_petition(db, rt, creator),
        factories.petition_gathering_sponsors(db, rt, creator),
        factories.petition_in_moderation(db, rt, creator),
        hidden,
        rejected,
    ]
    readers = [new_browser(), sign_in_as(new_browser(), db, creator), sign_in_as(new_browser(), db, mod)]
    for petition in withheld:
        assert readers[1].get(f"/petitions/{petition.id}").status_code == 200  # the organizers can read it...
        for reader in readers:
            response = reader.get(f"/petitions/{petition.id}/{route}")  # ...but it has no public QR code or poster
            assert response.status_code == 404, (petition.state, response.status_code)
            assert "text/html" in response.headers["content-type"]
    assert new_browser().get(f"/petitions/999999/{route}").status_code == 404
    assert new_browser().get(f"/petitions/{factories.closed_petition(db, rt).id}/{route}").status_code == 200


def test_a_response_any_cache_may_keep_sets_no_cookie(new_browser, db, rt) -> None:
    """A browser's first request gets its CSRF seed, unless the answer is public: a shared cache (a proxy, a CDN)
    that kept a Set-Cookie with the QR code would give every later reader the same seed."""
    petition = factories.open_petition(db, rt)
    for path in (
        f"/petitions/{petition.id}/qr.svg",
        f"/petitions/{petition.id}/poster.pdf",
        f"/api/v1/petitions/{petition.id}/log",
    ):
        response = new_browser().get(path)
        assert response.status_code == 200 and response.headers["cache-control"].startswith("public"), path
        assert "set-cookie" not in response.headers, path
    page = new_browser().get(f"/petitions/{petition.id}")  # a page, with forms: its reader gets a seed
    assert page.headers["cache-control"] == "no-store" and "csrf" in page.headers["set-cookie"]


# -- the poster --------------------------------------------------------------------------------------------------


def poster_of(browser: Browser, petition_id: int) -> bytes:
    response = browser.get(f"/petitions/{petition_id}/poster.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "public, max-age=60"
    return response.content


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4, in points
    return " ".join(reader.pages[0].extract_text().split())


def test_the_poster_prints_the_petition_and_its_qr_code_reads_back(browser: Browser, db, rt, tmp_path: Path) -> None:
    petition = factories.open_petition(
        db, rt, title="Fair on-call pay for the platform team", ask="Pay on-call hours at time and a half."
    )
    petition.signature_count = 1234  # as the sign path leaves it: the poster reads the count, nothing else
    db.commit()
    pdf = poster_of(browser, petition.id)
    text = text_of(pdf)
    for expected in (
        "Fair on-call pay for the platform team",
        "What we ask for",
        "Pay on-call hours at time and a half.",
        "1,234 signatures so far.",
        "Count as of 24 November 2026.",
        "Scan to read and sign",
        address(petition.id),
    ):
        assert expected in text, (expected, text)
    assert decoded(rendered(pdf, tmp_path)) == [address(petition.id)]


def test_the_poster_of_a_closed_petition_says_so(browser: Browser, db, rt) -> None:
    petition = factories.closed_petition(db, rt)
    text = text_of(poster_of(browser, petition.id))
    assert "Closed with 0 signatures." in text and "Scan to read it" in text and "and sign" not in text


@pytest.mark.parametrize("letters", ["words", "wide"])
def test_the_longest_title_and_ask_still_fit_one_page_with_a_readable_code(
    browser: Browser, db, rt, tmp_path: Path, letters: str
) -> None:
    if letters == "words":  # the longest text in words: it shrinks to fit, whole
        title = ("Winter heating " * 20)[:TITLE_MAX]
        ask = ("Every floor gets working radiators and a named person to call. " * 40)[: ASK_MAX - 1] + "!"
    else:  # the widest letters there are: the ask is cut, and the poster says where the rest is
        title, ask = "W" * TITLE_MAX, "W" * ASK_MAX
    petition = factories.open_petition(db, rt, title=title.strip(), ask=ask)
    pdf = poster_of(browser, petition.id)
    text = text_of(pdf)
    cut = "Shortened here: the whole text is at the address below."
    if letters == "words":
        assert ask in text and cut not in text
    else:
        assert "WWWW…" in text and cut in text
    assert title[:30] in text and address(petition.id) in text
    assert decoded(rendered(pdf, tmp_path)) == [address(petition.id)]


def test_characters_the_font_lacks_are_marked_not_dropped(browser: Browser, db, rt, tmp_path: Path) -> None:
    petition = factories.open_petition(db, rt, title="食堂 for everyone", ask="Open the canteen at night, 夜.")
    pdf = poster_of(browser, petition.id)
    text = text_of(pdf)
    assert "\ufffd\ufffd for everyone" in text and "Characters this font lacks print as" in text
    assert decoded(rendered(pdf, tmp_path)) == [address(petition.id)]


def test_the_poster_is_the_same_for_every_reader(new_browser, db, rt) -> None:
    creator = factories.worker(db)
    petition = factories.open_petition(db, rt, creator)
    assert poster_of(new_browser(), petition.id) == poster_of(sign_in_as(new_browser(), db, creator), petition.id)


def test_the_poster_prints_the_organization_name_its_admins_set(new_browser, db, rt) -> None:
    """Review F12: the poster printed the deployment's setting while every page showed the name admins chose."""
    from app.models.accounts import Role
    from app.organization import branding

    petition = factories.open_petition(db, rt, title="Fix the canteen ventilation")
    db.commit()
    assert rt.settings.organization_name in text_of(poster_of(new_browser(), petition.id))
    admin = factories.worker(db, name="Morgan Root", roles=(Role.admin,))
    branding.update(db=db, rt=rt, actor=admin, name="Acme Workers' Council", accent="", upload=None, remove_logo=False)
    db.commit()
    text = text_of(poster_of(new_browser(), petition.id))
    assert text.startswith("Acme Workers' Council Fix the canteen ventilation"), text
    assert "Acme Workers' Council · Petition #" in text and rt.settings.organization_name not in text


def test_drawing_posters_has_one_budget_and_a_refusal_in_words(database_url, connection, clock, db) -> None:
    """Review F12: anyone, signed out, could have posters drawn at half a second of a core each, without limit.
    Drawings count against one budget for all readers (the route reads no account, and nothing counts per address);
    a poster drawn before is served whatever the budget."""
    from fastapi.testclient import TestClient

    from app.reports import poster
    from tests.conftest import build_test_app, make_settings

    app = build_test_app(make_settings(database_url, rate_limit_poster="2/hour"), connection, clock)
    rt = app.state.runtime
    poster.forget_kept()
    first, second, third = (factories.open_petition(db, rt, title=f"Poster budget, petition {n}") for n in (1, 2, 3))
    db.commit()
    visitor = TestClient(app, base_url=BASE)
    assert visitor.get(f"/petitions/{first.id}/poster.pdf").status_code == 200
    assert visitor.get(f"/petitions/{second.id}/poster.pdf").status_code == 200
    refused = TestClient(app, base_url=BASE).get(f"/petitions/{third.id}/poster.pdf")
    assert refused.status_code == 429
    assert "Many posters are being printed at the moment. Please try again in a minute." in refused.text
    assert "text/html" in refused.headers["content-type"] and int(refused.headers["retry-after"]) >= 1
    assert "public" not in refused.headers.get("cache-control", "")
    # Drawn already: served to anyone, budget or not, and the same bytes.
    again = TestClient(app, base_url=BASE).get(f"/petitions/{first.id}/poster.pdf")
    assert again.status_code == 200 and again.content.startswith(b"%PDF")
    # A new signature is a new poster, hence a new drawing: refused too, until the budget's window opens again.
    first.signature_count += 1
    db.commit()
    assert visitor.get(f"/petitions/{first.id}/poster.pdf").status_code == 429
    rt.limiter.reset()
    assert "1 signature so far." in text_of(visitor.get(f"/petitions/{first.id}/poster.pdf").content)
