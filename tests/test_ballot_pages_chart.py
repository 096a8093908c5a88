"""The ballot result's SVG bar chart: escaped text, bars in proportion, the figures in words (issue #25)."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from app.reports.ballot_chart import result_chart_svg, share

SVG = "{http://www.w3.org/2000/svg}"


def test_each_option_gets_a_bar_in_proportion_and_its_figures_in_words() -> None:
    svg = result_chart_svg(title="Which demand first?", labels=["Pay", "Hours", "Remote"], counts=[6, 3, 0], total=9)
    root = ElementTree.fromstring(svg)
    assert root.get("role") == "img"
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.get("fill") not in ("#e6e9ee",)]
    widths = [float(rect.get("width", "0")) for rect in bars]
    assert len(widths) == 2  # nobody chose "Remote": no bar drawn over its track
    assert widths[0] == pytest.approx(2 * widths[1])
    description = root.find(f"{SVG}desc")
    assert description is not None and "Pay: 6, 67%." in (description.text or "")
    assert "Remote: 0, 0%." in (description.text or "")
    assert "6 (67%)" in svg


def test_text_is_escaped() -> None:
    svg = result_chart_svg(title="<script>", labels=['A & "B" <b>'], counts=[1], total=1)
    ElementTree.fromstring(svg)  # well-formed
    assert "<script>" not in svg and "<b>" not in svg


def test_long_labels_wrap_onto_lines_of_their_own() -> None:
    svg = result_chart_svg(title="t", labels=["word " * 40], counts=[1], total=2)
    texts = [t for t in ElementTree.fromstring(svg).iter(f"{SVG}text") if re.search("word", t.text or "")]
    assert len(texts) >= 3


def test_impossible_figures_are_refused() -> None:
    with pytest.raises(ValueError):
        result_chart_svg(title="t", labels=["a", "b"], counts=[1], total=1)
    with pytest.raises(ValueError):
        result_chart_svg(title="t", labels=["a"], counts=[3], total=2)


def test_shares_round_half_up_and_nobody_is_zero() -> None:
    assert share(1, 8) == 13  # 12.5
    assert share(1, 3) == 33
    assert share(0, 0) == 0
