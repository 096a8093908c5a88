"""Stacked bar charts drawn on the server as SVG: no JavaScript, no external assets, nothing the CSP refuses.

The page's Content-Security-Policy (`style-src 'self'`) blocks `style` attributes and elements, so the drawing
uses SVG presentation attributes (`fill`, `stroke`, `font-size`) only. Every piece of text is escaped here,
which is what lets a template insert the result with `| safe`. The chart is one image to assistive technology
(`role="img"`), named by its `<title>` and summarised in words by its `<desc>`; pages show the same numbers in
a table as well.
"""

from __future__ import annotations

import hashlib
import math
import re
from xml.sax.saxutils import escape

WIDTH = 720
PLOT_HEIGHT = 240
MARGIN_LEFT = 48
MARGIN_RIGHT = 16
MARGIN_TOP = 28
LABEL_AREA = 44  # two lines of axis labels under the bars
LEGEND_ROW = 22
FONT_SIZE = 13
CHAR_WIDTH = 7.2  # a generous average advance at FONT_SIZE, to lay out the legend without measuring text
INK = "#1b1f24"
MUTED = "#4a5360"
GRID = "#c9ced6"
GAP = "#ffffff"  # the line between stacked segments, so neighbours stay apart whatever the colour vision
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def tick_step(maximum: int) -> int:
    """A round step (1, 2, 5, 10, 20, 50...) giving at most five gridlines above zero."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if maximum <= step * 5:
                return step
        magnitude *= 10


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def describe(*, labels: list[str], series: list[tuple[str, list[int], str]]) -> str:
    """The chart in words, for people who do not see it."""
    if not labels:
        return "No data to show."
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(labels))]
    parts = [
        f"Stacked bar chart with one bar for each of {len(labels)} periods, {labels[0]} to {labels[-1]}.",
        "Each bar is split, from the bottom up, into: " + ", ".join(name for name, _, _ in series) + ".",
        "Totals over all periods: " + "; ".join(f"{name}, {sum(values):,}" for name, values, _ in series) + ".",
    ]
    if max(totals) == 0:
        parts.append("Every bar is empty.")
    else:
        tallest = max(range(len(labels)), key=lambda i: totals[i])  # the earliest of equals
        parts.append(f"The tallest bar is {labels[tallest]}, with {totals[tallest]:,}.")
    return " ".join(parts)


def _legend(series: list[tuple[str, list[int], str]], top: float) -> tuple[list[str], int]:
    parts: list[str] = []
    x, y, rows = float(MARGIN_LEFT), top, 1
    for name, _, colour in series:
        width = 12 + 6 + CHAR_WIDTH * len(name) + 20
        if x + width > WIDTH - MARGIN_RIGHT and x > MARGIN_LEFT:
            x, y, rows = float(MARGIN_LEFT), y + LEGEND_ROW, rows + 1
        parts.append(f'<rect x="{_number(x)}" y="{_number(y)}" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{_number(x + 18)}" y="{_number(y + 11)}" font-size="{FONT_SIZE}" fill="{INK}">'
            f"{escape(name)}</text>"
        )
        x += width
    return parts, rows


def bar_chart_svg(
    *, title: str, labels: list[str], series: list[tuple[str, list[int], str]], unit: str = "Petitions"
) -> str:
    """A stacked bar per label; `series` are (name, one value per label, "#rrggbb" colour), bottom to top;
    `unit` names what the vertical axis counts."""
    for name, values, colour in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
        if not COLOUR.fullmatch(colour):
            raise ValueError(f"series {name!r}: colours are #rrggbb, not {colour!r}")
        if any(value < 0 for value in values):
            raise ValueError(f"series {name!r}: stacked bars cannot show negative values")

    ident = "chart-" + hashlib.sha256(title.encode()).hexdigest()[:10]
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(labels))]
    step = tick_step(max(totals, default=0))
    top_value = max(step, step * math.ceil(max(totals, default=0) / step))
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_bottom = MARGIN_TOP + PLOT_HEIGHT
    legend, legend_rows = _legend(series, plot_bottom + LABEL_AREA + 8)
    height = plot_bottom + LABEL_AREA + 8 + legend_rows * LEGEND_ROW

    def y_of(value: float) -> float:
        return plot_bottom - value / top_value * PLOT_HEIGHT

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-title {ident}-desc" '
            f'viewBox="0 0 {WIDTH} {height}" width="100%">'
        ),
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(describe(labels=labels, series=series))}</desc>',
        f'<text x="{plot_left}" y="{MARGIN_TOP - 12}" font-size="{FONT_SIZE}" fill="{MUTED}">{escape(unit)}</text>',
    ]
    for tick in range(0, top_value + 1, step):
        y = _number(y_of(tick))
        if tick:
            parts.append(
                f'<line x1="{plot_left}" y1="{y}" x2="{plot_right}" y2="{y}" stroke="{GRID}" stroke-width="1"/>'
            )
        parts.append(
            f'<text x="{plot_left - 8}" y="{y}" dy="0.35em" text-anchor="end" font-size="{FONT_SIZE}" '
            f'fill="{MUTED}">{tick:,}</text>'
        )

    band = (plot_right - plot_left) / max(len(labels), 1)
    bar_width = min(band * 0.6, 64)
    for index, label in enumerate(labels):
        centre = plot_left + band * (index + 0.5)
        x = _number(centre - bar_width / 2)
        base = 0
        parts.append("<g>")
        for name, values, colour in series:
            value = values[index]
            if value == 0:
                continue
            top, bottom = y_of(base + value), y_of(base)
            parts.append(
                f'<rect x="{x}" y="{_number(top)}" width="{_number(bar_width)}" '
                f'height="{_number(bottom - top)}" fill="{colour}" stroke="{GAP}" stroke-width="1">'
                f"<title>{escape(f'{label}: {name}, {value:,}')}</title></rect>"
            )
            base += value
        words = label.split(" ", 1)
        lines = "".join(
            f'<tspan x="{_number(centre)}" dy="{"0" if line == 0 else "1.2em"}">{escape(word)}</tspan>'
            for line, word in enumerate(words)
        )
        parts.append(
            f'<text x="{_number(centre)}" y="{plot_bottom + 18}" text-anchor="middle" '
            f'font-size="{FONT_SIZE}" fill="{INK}">{lines}</text>'
        )
        parts.append("</g>")
    parts.append(
        f'<line x1="{plot_left}" y1="{plot_bottom}" x2="{plot_right}" y2="{plot_bottom}" stroke="{INK}" '
        'stroke-width="1"/>'
    )
    parts.extend(legend)
    parts.append("</svg>")
    return "".join(parts)
