"""Markdown for text people write (responses, later comments): a safe subset, sanitized after rendering."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(["image", "html_block",
                                                                                  "html_inline"])
ALLOWED_TAGS = {"p", "br", "em", "strong", "ul", "ol", "li", "a", "blockquote", "code", "pre", "h3", "h4"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}


def render_markdown(text: str) -> str:
    """HTML safe to insert in a page: raw HTML is not rendered, and nh3 keeps only the allowed tags."""
    html = _renderer.render(text)
    # Headings people write become small headings so they cannot outrank the page's own.
    for level in ("1", "2"):
        html = html.replace(f"<h{level}>", "<h3>").replace(f"</h{level}>", "</h3>")
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="nofollow ugc noopener")
