"""A ballot's result as a horizontal bar chart in SVG: no script, nothing the page's CSP refuses.

One bar per option, its length the option's share of the people who answered, the count and the share written
beside it. Horizontal, so that an option's label (up to 200 characters) is read on its own line above its bar
rather than squeezed under it; the drawing scales to the page's width (viewBox), so it reads at 360 px too.
As in app/responses/chart.py, only presentation attributes are used (`style-src 'self'` blocks style
attributes), every piece of text is escaped here (a template inserts the result with `| safe`), and the chart is
one image to assistive technology, named by its `<title>` and described in words by its `<desc>`; the page shows
the same figures in a table.
"""

from __future__ import annotations

import hashlib
import textwrap
from xml.sax.saxutils import escape

WIDTH = 640
MARGIN = 8
BAR_HEIGHT = 22
LINE_HEIGHT = 18
ROW_GAP = 14
FONT_SIZE = 14
LABEL_CHARACTERS = 70  # a label's line at FONT_SIZE across WIDTH, generously; longer labels wrap
VALUE_AREA = 150  # right of the longest bar: "1,234 (100%)"
INK = "#1b1f24"
MUTED = "#4a5360"
TRACK = "#e6e9ee"
BAR = "#1f5fa8"  # 7:1 against white: the bar itself is the figure, not only its colour
LEADER = "#0b6b3a"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def share(count: int, total: int) -> int:
    """A count's whole-percent share of `total` (0 when nobody answered), rounded half up as people expect."""
    return (count * 200 + total) // (total * 2) if total else 0


def describe(*, labels: list[str], counts: list[int], total: int) -> str:
    """The chart in words, for people who do not see it."""
    if not labels:
        return "No options."
    parts = [f"Bar chart of {total:,} answer{'' if total == 1 else 's'} over {len(labels)} options."]
    parts.extend(f"{label}: {count:,}, {share(count, total)}%." for label, count in zip(labels, counts, strict=True))
    return " ".join(parts)


def result_chart_svg(*, title: str, labels: list[str], counts: list[int], total: int) -> str:
    """A bar per option: `counts[i]` people of `total` who answered chose `labels[i]` (several may choose several
    options, so the counts may add up to more than `total`). The options with the most are drawn in a second
    colour and marked in words, so the colour is never the only sign."""
    if len(labels) != len(counts):
        raise ValueError(f"{len(counts)} counts for {len(labels)} options")
    if total < 0 or any(count < 0 or count > total for count in counts):
        raise ValueError("each count must be between 0 and the number of answers")
    ident = "ballot-chart-" + hashlib.sha256(title.encode()).hexdigest()[:10]
    most = max(counts, default=0)
    track = WIDTH - 2 * MARGIN - VALUE_AREA
    parts: list[str] = []
    y = float(MARGIN)
    for label, count in zip(labels, counts, strict=True):
        lines = textwrap.wrap(label, LABEL_CHARACTERS) or [""]
        for line in lines:
            y += LINE_HEIGHT
            parts.append(
                f'<text x="{MARGIN}" y="{_number(y - 4)}" font-size="{FONT_SIZE}" fill="{INK}">{escape(line)}</text>'
            )
        y += 4
        leading = most > 0 and count == most
        length = track * count / total if total else 0.0
        figure = f"{count:,} ({share(count, total)}%)"
        parts.append(f'<rect x="{MARGIN}" y="{_number(y)}" width="{track}" height="{BAR_HEIGHT}" fill="{TRACK}"/>')
        if length:
            parts.append(
                f'<rect x="{MARGIN}" y="{_number(y)}" width="{_number(length)}" height="{BAR_HEIGHT}" '
                f'fill="{LEADER if leading else BAR}"/>'
            )
        weight = ' font-weight="bold"' if leading else ""
        parts.append(
            f'<text x="{MARGIN + track + 8}" y="{_number(y + BAR_HEIGHT / 2)}" dy="0.35em" font-size="{FONT_SIZE}" '
            f'fill="{INK if leading else MUTED}"{weight}>{escape(figure)}</text>'
        )
        y += BAR_HEIGHT + ROW_GAP
    height = _number(y + MARGIN - ROW_GAP)
    return "".join(
        [
            (
                f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-title {ident}-desc" '
                f'viewBox="0 0 {WIDTH} {height}" width="100%">'
            ),
            f'<title id="{ident}-title">{escape(title)}</title>',
            f'<desc id="{ident}-desc">{escape(describe(labels=labels, counts=counts, total=total))}</desc>',
            *parts,
            "</svg>",
        ]
    )
