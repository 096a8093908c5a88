"""The Markdown people write (a petition's background, a response's details) as blocks the PDF can print: each a
paragraph, list item, quote or heading, its inline bold, italics and links in fpdf2's own markup.

Parsed with markdown-it, as the pages parse it, with raw HTML and images off; nothing is rendered as HTML. The
text of every piece goes through the document's `clean` first (what the font cannot print becomes U+FFFD), and
fpdf2's markers in it are escaped, so "--" or "**" people type literally print as typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable(["image", "html_block", "html_inline"])
# fpdf2's markers (bold, italics, strikethrough, underline), and "[" which could start its link syntax.
_MARKERS = re.compile(r"(\\|\*\*|__|~~|--|\[)")
BOLD, ITALICS = "**", "__"


@dataclass(frozen=True)
class Block:
    kind: str  # "paragraph", "heading", "item" (of a list) or "quote"
    markup: str  # fpdf2 markdown: **bold**, __italics__, [text](url)
    plain: str  # the same text without styles, for right-to-left lines (printed without them)
    depth: int = 0  # list or quote nesting
    bullet: str = ""  # "•", or "1." for an ordered list's item


def _escape(text: str) -> str:
    return _MARKERS.sub(lambda match: "\\" + match.group(1), text)


def _inline(children: list[Token], clean: Callable[[str], str]) -> tuple[str, str]:
    markup: list[str] = []
    plain: list[str] = []
    link: str | None = None
    for token in children:
        if token.type in ("text", "code_inline"):
            text = clean(token.content)
            markup.append(_escape(text))
            plain.append(text)
        elif token.type in ("softbreak", "hardbreak"):
            markup.append(" " if token.type == "softbreak" else "\n")
            plain.append(" " if token.type == "softbreak" else "\n")
        elif token.type in ("strong_open", "strong_close"):
            markup.append(BOLD)
        elif token.type in ("em_open", "em_close"):
            markup.append(ITALICS)
        elif token.type == "link_open":
            href = str(token.attrs.get("href", ""))
            link = (
                href
                if href.startswith(("http://", "https://", "mailto:")) and "(" not in href and ")" not in href
                else None
            )
            if link:
                markup.append("[")
        elif token.type == "link_close":
            if link:
                markup.append(f"]({link})")
            link = None
    return "".join(markup), "".join(plain)


def blocks(text: str, *, clean: Callable[[str], str]) -> list[Block]:
    """The blocks of `text`, in order."""
    found: list[Block] = []
    lists: list[list[int]] = []  # per open list: [next number] for ordered, [] for bullets
    quotes = 0
    pending_bullet = ""
    kind = "paragraph"
    for token in _parser.parse(text.replace("\r\n", "\n").replace("\r", "\n")):
        if token.type == "bullet_list_open":
            lists.append([])
        elif token.type == "ordered_list_open":
            lists.append([int(str(token.attrs.get("start", 1) or 1))])
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif token.type == "list_item_open":
            if lists and lists[-1]:
                pending_bullet = f"{lists[-1][0]}."
                lists[-1][0] += 1
            else:
                pending_bullet = "•"
        elif token.type == "blockquote_open":
            quotes += 1
        elif token.type == "blockquote_close":
            quotes -= 1
        elif token.type == "heading_open":
            kind = "heading"
        elif token.type in ("fence", "code_block"):
            code = clean(token.content.rstrip("\n"))
            found.append(Block("quote", _escape(code), code, depth=len(lists) + quotes))
        elif token.type == "inline":
            markup, plain = _inline(token.children or [], clean)
            if kind == "heading":
                markup = f"{BOLD}{markup}{BOLD}" if BOLD not in markup else markup
            # A list item's second paragraph is still the item's: indented like its text, without a bullet.
            block_kind = (
                kind if kind == "heading" else "item" if pending_bullet or lists else "quote" if quotes else "paragraph"
            )
            found.append(Block(block_kind, markup, plain, depth=max(len(lists) - 1, 0) + quotes, bullet=pending_bullet))
            pending_bullet, kind = "", "paragraph"
    return found
