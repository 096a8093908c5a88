"""What people write in comments renders inert: an XSS corpus through the renderer and through the pages."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy.orm import Session

from app.core.markdown import COMMENT_TAGS, render_comment
from app.core.runtime import Runtime
from tests import factories
from tests.conftest import Browser, make_settings, project_root, sign_in_as

pytestmark = pytest.mark.one_database

CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><circle r=40></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "![image](javascript:alert(1))",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    "<div onclick=alert(1)>click</div>",
    "<b onmouseover=alert(1)>hover</b>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<a href="http://ok.example" onclick="alert(1)">fine link, bad handler</a>',
    '<object data="javascript:alert(1)"></object>',
    "<embed src=javascript:alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    '<meta http-equiv=refresh content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<!-- <script>alert(1)</script> -->",
    "<a href='x' <script>alert(1)</script>",
    "`<script>alert(1)</script>` and ```\n<script>alert(1)</script>\n```",
    "> <img src=x onerror=alert(1)>\n\n- <svg/onload=alert(1)>",
    '[x](https://ok.example "title" onmouseover=alert(1))',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '<a href="&#106;avascript:alert(1)">encoded</a>',
    "[encoded](&#106;avascript:alert(1))",
    "[tab](java\tscript:alert(1))",
    "</div></li></ol><script>alert(1)</script>",
    '"><script>alert(1)</script>',
]

SAFE_SCHEMES = ("http://", "https://", "mailto:")
# The only scripts a page may load: our own static files (the CSP refuses inline ones).
OUR_SCRIPTS = {f"/static/{script.name}" for script in (project_root() / "app" / "static").glob("*.js")}


class Collector(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector.tags


def assert_inert(html: str) -> None:
    for tag, attributes in tags_of(html):
        assert tag in COMMENT_TAGS, f"unexpected <{tag}> in {html!r}"
        for name, value in attributes.items():
            assert not name.startswith("on") and name != "style", f"{name} on <{tag}> in {html!r}"
            if name == "href":
                assert value and value.strip().lower().startswith(SAFE_SCHEMES), f"href {value!r} in {html!r}"
            else:
                assert (tag, name) == ("a", "rel"), f"attribute {name} on <{tag}>"


@pytest.mark.parametrize("text", CORPUS)
def test_the_renderer_keeps_only_inert_markup(text: str) -> None:
    assert_inert(render_comment(text))


def test_links_that_stay_are_marked_as_user_content() -> None:
    html = render_comment("[our handbook](https://intranet.example/handbook)")
    ((_tag, attributes),) = [found for found in tags_of(html) if found[0] == "a"]
    assert attributes == {"href": "https://intranet.example/handbook", "rel": "nofollow ugc noopener"}


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, rate_limit_comment="1000/minute")


def test_the_corpus_posted_through_the_api_is_inert_on_every_page(browser: Browser, db: Session, rt: Runtime) -> None:
    petition = factories.open_petition(db, rt)
    sign_in_as(browser, db, factories.worker(db))
    ids = []
    for text in CORPUS:
        response = browser.api("POST", f"/api/v1/petitions/{petition.id}/comments", {"body": text})
        assert response.status_code == 201, response.text
        assert_inert(response.json()["body_html"])
        ids.append(response.json()["id"])
    pages = [
        f"/petitions/{petition.id}",
        f"/petitions/{petition.id}/comments?sort=newest",
        f"/petitions/{petition.id}/comments/new?after=0",
    ] + [f"/comments/{comment_id}" for comment_id in ids[:5]]
    # The page's own pictures: the share row's QR code of the petition's address, and the organization's logo.
    our_images = {f"/petitions/{petition.id}/qr.svg", "/organization/logo"}
    for path in pages:
        page = browser.get(path).text
        scripts = [attributes for tag, attributes in tags_of(page) if tag == "script"]
        assert all(attributes.get("src") in OUR_SCRIPTS for attributes in scripts), path
        for tag, attributes in tags_of(page):
            assert (
                tag not in ("iframe", "object", "embed", "svg", "img", "meta", "base")
                or (tag == "meta" and set(attributes) <= {"charset", "name", "content"})
                or (tag == "img" and attributes.get("src") in our_images)
            ), (path, tag, attributes)
            assert not any(name.startswith("on") for name in attributes), (path, tag, attributes)
            assert "javascript:" not in (attributes.get("href") or "").lower(), (path, attributes)
