"""Bar charts drawn on the server as SVG: no script, readable by screen readers, printable (pure)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

# Two series, each with contrast of at least 4.5:1 against white (WCAG AA), told apart by label too.
COLOURS = ("#005eb8", "#7a4a00")
ROW = 22
LABEL_WIDTH = 150
BAR_WIDTH = 320
LABEL_ROW = 18  # a label above its bars (labels_above)
CHARACTER_WIDTH = 7  # about what one character of a 13 px sans-serif label takes


def fitted(label: str, width: int) -> str:
    """`label` shortened with an ellipsis to about `width` pixels, at a word's end where one is near."""
    most = max(width // CHARACTER_WIDTH, 2)
    if len(label) <= most:
        return label
    cut = label[: most - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > most // 2 else cut).rstrip(" ,;·") + "…"


def bar_chart(
    title: str, rows: list[tuple[str, list[int]]], series: list[str], *, labels_above: bool = False
) -> Markup:
    """Horizontal grouped bars: one group per row label, one bar per series, each with its number.

    With `labels_above` each label has a line of its own above its bars (for long labels such as a rule's id
    and title), shortened to the chart's width; the whole label is the label's and each bar's tooltip.
    """
    groups = max(len(rows), 1)
    width = LABEL_WIDTH + BAR_WIDTH + 60
    height = 28 + groups * ROW * len(series) + groups * 6 + (groups * LABEL_ROW if labels_above else 0)
    biggest = max([value for _, values in rows for value in values] + [1])
    bar_x, bar_width = (0, LABEL_WIDTH + BAR_WIDTH) if labels_above else (LABEL_WIDTH, BAR_WIDTH)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" class="chart">',
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
        if labels_above:
            shown = fitted(label, width)
            parts.append(
                f'<text x="0" y="{y + 13}" font-size="13"><title>{escape(label)}</title>{escape(shown)}</text>'
            )
            y += LABEL_ROW
        else:
            parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(label)}</text>')
        for index, value in enumerate(values):
            length = round(bar_width * value / biggest)
            parts.append(
                f'<rect x="{bar_x}" y="{y + 3}" width="{length}" height="{ROW - 6}" '
                f'fill="{COLOURS[index % 2]}"><title>{escape(label)} {escape(series[index])}: {value}</title></rect>'
            )
            parts.append(f'<text x="{bar_x + length + 4}" y="{y + 15}" font-size="12">{value}</text>')
            y += ROW
        y += 6
    parts.append("</svg>")
    return Markup("".join(parts))
