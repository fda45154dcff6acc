"""Bar charts drawn on the server as SVG: no script, readable by screen readers, printable (pure)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

# Two series, each with contrast of at least 4.5:1 against white (WCAG AA), told apart by label too.
COLOURS = ("#005eb8", "#7a4a00")
ROW = 22
LABEL_WIDTH = 150
BAR_WIDTH = 320


def bar_chart(title: str, rows: list[tuple[str, list[int]]], series: list[str]) -> Markup:
    """Horizontal grouped bars: one group per row label, one bar per series, each with its number."""
    groups = max(len(rows), 1)
    height = 28 + groups * ROW * len(series) + groups * 6
    biggest = max([value for _, values in rows for value in values] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{LABEL_WIDTH + BAR_WIDTH + 60}" height="{height}" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    legend_x = LABEL_WIDTH
    for index, name in enumerate(series):
        parts.append(f'<rect x="{legend_x}" y="4" width="12" height="12" fill="{COLOURS[index % 2]}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="15" font-size="12">{escape(name)}</text>')
        legend_x += 20 + 8 * len(name)
    y = 28
    if not rows:
        parts.append(f'<text x="0" y="{y + 14}" font-size="13">Nothing in this period.</text>')
    for label, values in rows:
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(label)}</text>')
        for index, value in enumerate(values):
            width = round(BAR_WIDTH * value / biggest)
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width}" height="{ROW - 6}" '
                f'fill="{COLOURS[index % 2]}"><title>{escape(label)} {escape(series[index])}: {value}</title></rect>'
            )
            parts.append(f'<text x="{LABEL_WIDTH + width + 4}" y="{y + 15}" font-size="12">{value}</text>')
            y += ROW
        y += 6
    parts.append("</svg>")
    return Markup("".join(parts))
