"""Markdown for text people write (responses, comments): a safe subset, sanitized after rendering."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_UNSAFE = ["image", "html_block", "html_inline"]
_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(_UNSAFE)
# Comments take emphasis, lists, links, quotes and code: no headings or rules to shout with.
_comment_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(
    [*_UNSAFE, "heading", "lheading", "hr"]
)
ALLOWED_TAGS = {"p", "br", "em", "strong", "ul", "ol", "li", "a", "blockquote", "code", "pre", "h3", "h4"}
COMMENT_TAGS = ALLOWED_TAGS - {"h3", "h4"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}


def _clean(html: str, tags: set[str]) -> str:
    return nh3.clean(
        html,
        tags=tags,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow ugc noopener",
    )


def render_markdown(text: str) -> str:
    """HTML safe to insert in a page: raw HTML is not rendered, and nh3 keeps only the allowed tags."""
    html = _renderer.render(text)
    # Headings people write become small headings so they cannot outrank the page's own.
    for level in ("1", "2"):
        html = html.replace(f"<h{level}>", "<h3>").replace(f"</h{level}>", "</h3>")
    return _clean(html, ALLOWED_TAGS)


def render_comment(text: str) -> str:
    return _clean(_comment_renderer.render(text), COMMENT_TAGS)
