"""Server-side SVG charts: readable by screen readers, escaped, proportional (pure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from wnb.web.charts import BAR_WIDTH, bar_chart, fitted


def test_a_chart_is_well_formed_svg_with_a_title_for_screen_readers() -> None:
    svg = str(bar_chart("Raised per rule", [("WNB-01", [1, 5])], ["flags", "tasks"]))
    root = ElementTree.fromstring(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "Raised per rule"


def test_the_biggest_value_fills_the_bar_width_and_others_are_in_proportion() -> None:
    svg = str(bar_chart("t", [("a", [2, 4])], ["x", "y"]))
    widths = [int(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="(\d+)" height="16"', svg)]
    assert widths == [BAR_WIDTH // 2, BAR_WIDTH]


def test_labels_from_the_data_are_escaped() -> None:
    svg = str(bar_chart("t", [("<script>alert(1)</script>", [1])], ["x"]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_an_empty_period_says_so() -> None:
    assert "Nothing in this period." in str(bar_chart("t", [], ["x"]))


def test_a_long_label_above_its_bars_is_shortened_with_the_whole_label_as_its_tooltip() -> None:
    label = "WNB-02 · A child known to a lead professional (child in need, early help) was not brought " * 2
    svg = str(bar_chart("t", [(label, [3])], ["flags"], labels_above=True))
    root = ElementTree.fromstring(svg)
    tooltip = root.findall("{http://www.w3.org/2000/svg}text")[1].find("{http://www.w3.org/2000/svg}title")
    assert tooltip is not None and tooltip.text == label
    shown = tooltip.tail or ""  # what the label shows, after its tooltip
    assert shown.startswith("WNB-02 · A child known") and shown.endswith("…") and len(shown) < len(label)


def test_a_short_label_above_its_bars_is_shown_whole() -> None:
    assert fitted("WNB-01 · Short", 500) == "WNB-01 · Short"
