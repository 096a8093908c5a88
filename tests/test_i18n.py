"""Text ready for translation: the pages' and mails' words go through one gettext layer (Babel catalogs, the
Jinja2 i18n extension), and dates and numbers are written the locale's way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.core.clock import FrozenClock
from app.core.i18n import N_, Message
from app.core.settings import PROJECT_ROOT
from app.mail import service as mail
from app.models.accounts import Role
from tests import factories
from tests.conftest import Browser, build_test_app, make_settings, sign_in_as

pytestmark = pytest.mark.one_database


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def extracted_messages() -> list[str | tuple[str, str]]:
    """What `make messages` extracts, read with babel.cfg: message ids, (singular, plural) for plurals."""
    with open(PROJECT_ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return [
        (message[0], message[1]) if isinstance(message, tuple) else message
        for _file, _line, message, _comments, _context in extract_from_dir(str(PROJECT_ROOT), method_map, options_map)
    ]


@pytest.fixture
def browser_in(database_url: str, connection: Connection, clock: FrozenClock) -> Iterator:
    """A browser on an app built with other settings (a locale, a catalog directory)."""
    clients: list[TestClient] = []

    def open_browser(**overrides: object) -> tuple[Browser, FastAPI]:
        app = build_test_app(make_settings(database_url, **overrides), connection, clock)
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return Browser(client), app

    yield open_browser
    for client in clients:
        client.__exit__(None, None, None)


def test_numbers_and_dates_follow_the_locale(browser_in, db: Session) -> None:
    """Without a German catalog the words stay English, but the numbers and dates are German."""
    for locale, threshold, day in [("en", "1,234", "03 Dec 2026"), ("de", "1.234", "03 Dez. 2026")]:
        browser, app = browser_in(locale=locale, response_threshold=1234)
        home = text(browser.get("/").text)
        assert f"A petition that reaches {threshold} signatures" in home, home
        factories.open_petition(db, app.state.runtime, title=f"Petition in {locale}", deadline=date(2026, 12, 3))
        listing = text(browser.get("/petitions").text)
        assert f"closes {day}" in listing, listing


def test_make_messages_finds_the_templates_words() -> None:
    messages = {message if isinstance(message, str) else message[0] for message in extracted_messages()}
    # The templates held about 620 messages and the code about 220 when this was written.
    assert len(messages) > 700, len(messages)
    for known in [
        "Sign in",
        "Speak up together, safely",
        "Work email address",
        "Skip to main content",
        "<strong>%(number)s</strong> signature",
        "Accounts and roles",
        "Sign in to %(site_name)s",
        "Hello %(display_name)s,",
        "Flagged comments",
        "Scoreboard",
        "We could not find that page",
        "Your comment is updated.",
    ]:
        assert known in messages, known


@pytest.fixture(scope="module")
def pseudo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every message as ⟦message⟧, compiled for "de": text outside the brackets never went through gettext."""
    catalog = Catalog(locale="de")
    for message in set(extracted_messages()):
        if isinstance(message, tuple):
            catalog.add(message, tuple(f"⟦{form}⟧" for form in message))
        else:
            catalog.add(message, f"⟦{message}⟧")
    directory = tmp_path_factory.mktemp("locale")
    (directory / "de" / "LC_MESSAGES").mkdir(parents=True)
    with open(directory / "de" / "LC_MESSAGES" / "messages.mo", "wb") as mo:
        write_mo(mo, catalog)
    return directory


def test_pages_speak_through_the_catalog(browser_in, pseudo_catalog: Path, db: Session) -> None:
    browser, app = browser_in(locale="de", locale_dir=pseudo_catalog, response_threshold=1234)
    home = text(browser.get("/").text)
    assert "⟦Speak up together, safely⟧" in home
    assert "⟦Skip to main content⟧" in home
    assert "A petition that reaches 1.234 signatures" in home  # inside the brackets, German digits
    signin = browser.get("/signin").text
    assert "⟦Sign in⟧</h1>" in signin and "⟦Work email address⟧" in signin
    assert '<html lang="de">' in signin
    # Text the code chooses (app.core.i18n.N_) is translated where it is rendered.
    assert "⟦Sign in with an emailed link⟧</h1>" in browser.get("/signin/link").text
    assert "⟦We could not find that page⟧</h1>" in browser.get("/petitions/999999999").text
    petition = factories.open_petition(db, app.state.runtime, title="Screens")
    listing = browser.get("/petitions").text
    assert "⟦<strong>0</strong> signatures⟧" in listing
    page = browser.get(f"/petitions/{petition.id}").text
    assert "⟦What we ask for⟧" in page and "⟦Sign in to sign⟧" in page
    assert "⟦Open for signatures⟧</span>" in page  # a state's label, chosen by the code
    sign_in_as(browser, db, factories.worker(db, name="Ada Admin", roles=(Role.admin,)))
    admin = browser.get("/admin/users").text
    assert "⟦Accounts and roles⟧</h1>" in admin and "⟦Accounts with their roles⟧" in admin
    signed_out = browser.post("/signout")
    assert "⟦You are signed out.⟧" in browser.get(signed_out.headers["location"]).text  # a flash message


def test_mail_speaks_through_the_catalog(browser_in, pseudo_catalog: Path, db: Session) -> None:
    _browser, app = browser_in(locale="de", locale_dir=pseudo_catalog)
    rt = app.state.runtime
    user = factories.worker(db, name="Ada")
    message = mail.queue(
        db=db,
        templates=rt.templates,
        to_address="ada@example.org",
        template="sign_in_link",
        context={"user": user, "base_url": "http://testserver", "link_token": "t0ken", "minutes": 15},
        now=rt.clock.now(),
    )
    assert message.subject == "⟦Sign in to Undersigned⟧"  # the Subject: prefix the queue reads stays English
    assert "⟦Hello Ada,⟧" in message.body_text and "http://testserver/signin/link/t0ken" in message.body_text
    assert "⟦The link works once, for 15 minutes." in message.body_text


def test_error_messages_with_parameters_speak_through_the_catalog(browser_in, pseudo_catalog: Path) -> None:
    """An error message with parameters (app.core.i18n.Message) is translated first and filled in after, a
    message given as a parameter translated in turn: an f-string would have shown in English. The form's own
    field checks (pydantic's, in words from app.core.forms) go through the catalog the same way."""
    browser, app = browser_in(locale="de", locale_dir=pseudo_catalog)
    form = {"email": "ada@elsewhere.org", "display_name": "Ada", "password": "a long enough passphrase"}
    page = text(browser.post("/signup", form).text)
    assert "⟦Use your work address at example.org or example.com.⟧" in page
    short = text(browser.post("/signup", {**form, "email": "ada@example.org", "password": "short"}).text)
    assert "⟦Use at least 10 characters.⟧" in short
    translate = app.state.templates.env.filters["translate"]
    refused = Message(
        N_("A petition that is “%(current)s” cannot become “%(target)s”."),
        current=Message(N_("Closed")),
        target=Message(N_("Open for signatures")),
    )
    assert translate(refused) == "⟦A petition that is “⟦Closed⟧” cannot become “⟦Open for signatures⟧”.⟧"
