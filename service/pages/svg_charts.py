"""Charts drawn on the server as inline SVG: no script, no chart library, nothing from another site.

Each function takes plain values and returns SVG markup made of shapes only. The words that go with a chart (its
legend, its axis labels, its figures) are the page's own HTML, so they stay readable at any width and in any language,
and the chart is drawn at the page's width: bars and tracks in percentages of it, the line chart stretched to it with
strokes that keep their width. Colours are SVG presentation attributes (fill=, stroke=): the CSP forbids style
attributes, not these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Where the money is, and the milestones' states: one palette for the charts and their legends.
COLORS = {
    "fees": "#a8a29e",
    "released": "#166534",
    "held": "#c2410c",
    "refunded": "#1e40af",
    "disputed": "#7c3aed",
    "dispute_lost": "#991b1b",
    "requested": "#d97706",
    "pending": "#d6d3d1",
    "cancelled": "#e7a3a3",
    "track": "#efe9e1",
    "grid": "#e7e3dc",
    "goal": "#57534e",
    "line": "#c2410c",
    "area": "#fde3d0",
}
# Widths are shared out in these units of the whole (basis points of the chart's width).
WIDTH_UNITS = 10_000


@dataclass(frozen=True)
class BarPart:
    """One part of a stacked bar: `value` in any unit, drawn in `color`."""

    value: int
    color: str


@dataclass(frozen=True)
class TrackStep:
    """One milestone on the release track: its share of the escrow and its status."""

    share_bps: int
    status: str


def proportional_widths(values: Sequence[int], total: int, *, least: int = 0) -> list[int]:
    """`total` shared out in proportion to `values` (the largest remainders get the leftover units, earlier first on a
    tie), so the widths add up to `total` exactly. A value of 0 gets 0; any other gets at least `least`, taken from the
    widest, so that a sliver stays visible. Negative values count as 0."""
    clean = [max(0, value) for value in values]
    whole = sum(clean)
    if whole == 0:
        return [0] * len(clean)
    widths = [value * total // whole for value in clean]
    leftover = total - sum(widths)
    by_remainder = sorted(range(len(clean)), key=lambda i: (-(clean[i] * total % whole), i))
    for i in by_remainder[:leftover]:
        widths[i] += 1
    for i, value in enumerate(clean):
        missing = least - widths[i] if value > 0 else 0
        if missing > 0:
            widest = max(range(len(widths)), key=lambda j: widths[j])
            taken = min(missing, max(0, widths[widest] - least))
            widths[widest] -= taken
            widths[i] += taken
    return widths


def nice_ceiling(value: int) -> int:
    """The smallest round number at or above `value` for an axis's top: 1, 2, 2.5 or 5 times a power of ten
    (0 and below give 1). 7_340 gives 10_000; 180_000 gives 200_000; 230 gives 250."""
    if value <= 1:
        return 1
    power = 1
    while power * 10 < value:
        power *= 10
    for tenths in (10, 20, 25, 50):
        if power * tenths % 10 == 0 and power * tenths // 10 >= value:
            return power * tenths // 10
    return power * 10


def _percent(units: int) -> str:
    return f"{units / (WIDTH_UNITS / 100):.2f}%"


def _svg_open(css_class: str, label: str, *, extra: str = "") -> str:
    return (
        f'<svg class="chart {css_class}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{escape(label)}" focusable="false"{extra}>'
        f"<title>{escape(label)}</title>"
    )


def stacked_bar(parts: Sequence[BarPart], *, label: str, height: int = 40) -> Markup:
    """A horizontal bar the width of the page, split into `parts` in proportion to their values, on an empty track
    when every value is 0. `label` names the chart for screen readers (its figures belong in the page's legend)."""
    widths = proportional_widths([part.value for part in parts], WIDTH_UNITS, least=WIDTH_UNITS // 200)
    shapes = [f'<rect x="0" y="0" width="100%" height="{height}" rx="6" fill="{COLORS["track"]}"/>']
    x = 0
    for part, width in zip(parts, widths, strict=True):
        if width:
            shapes.append(
                f'<rect x="{_percent(x)}" y="0" width="{_percent(width)}" height="{height}" '
                f'fill="{escape(part.color)}"/>'
            )
        x += width
    # White seams between the parts, drawn over them so that neighbours never blur into one.
    x = 0
    for width in widths[:-1]:
        x += width
        if width and 0 < x < WIDTH_UNITS:
            shapes.append(f'<rect x="{_percent(x)}" y="0" width="2" height="{height}" fill="#ffffff"/>')
    body = "".join(shapes)
    extra = f' width="100%" height="{height}"'
    return Markup(_svg_open("chart-bar", label, extra=extra) + body + "</svg>")  # noqa: S704 - built from escaped parts


def milestone_track(steps: Sequence[TrackStep], *, label: str, height: int = 36) -> Markup:
    """The milestones in order along one line, each as long as its share of the escrow and coloured by its status
    (released, requested, pending, cancelled), with a node where each one ends. The line is drawn in percentages of
    the page's width and overflows a little at both ends for the round nodes (give its wrapper side padding)."""
    middle = height // 2
    shapes = [
        f'<line x1="0%" y1="{middle}" x2="100%" y2="{middle}" stroke="{COLORS["track"]}" stroke-width="8" '
        'stroke-linecap="round"/>'
    ]
    widths = proportional_widths([step.share_bps for step in steps], WIDTH_UNITS)
    x = 0
    nodes = [f'<circle cx="0%" cy="{middle}" r="6" fill="{COLORS["released"]}"/>'] if steps else []
    for step, width in zip(steps, widths, strict=True):
        color = COLORS.get(step.status, COLORS["pending"])
        end = x + width
        if width:
            shapes.append(
                f'<line x1="{_percent(x)}" y1="{middle}" x2="{_percent(end)}" y2="{middle}" '
                f'stroke="{color}" stroke-width="8"/>'
            )
        nodes.append(_node(_percent(end), middle, step.status))
        x = end
    body = "".join(shapes + nodes)
    extra = f' width="100%" height="{height}" overflow="visible"'
    return Markup(_svg_open("chart-track", label, extra=extra) + body + "</svg>")  # noqa: S704 - built from escaped parts


def _node(cx: str, cy: int, status: str) -> str:
    """A milestone's node: filled when released, a thick ring when requested, a hollow ring when pending, a pale
    disc when cancelled."""
    if status == "released":
        return f'<circle cx="{cx}" cy="{cy}" r="10" fill="{COLORS["released"]}" stroke="#ffffff" stroke-width="3"/>'
    if status == "requested":
        return f'<circle cx="{cx}" cy="{cy}" r="9" fill="#ffffff" stroke="{COLORS["requested"]}" stroke-width="5"/>'
    if status == "cancelled":
        return f'<circle cx="{cx}" cy="{cy}" r="9" fill="{COLORS["cancelled"]}" stroke="#ffffff" stroke-width="3"/>'
    return f'<circle cx="{cx}" cy="{cy}" r="9" fill="#ffffff" stroke="#a8a29e" stroke-width="3"/>'


def status_dot(status: str) -> Markup:
    """The node of `status` on its own, 20 px square, for a legend or a list beside the track."""
    return Markup(  # noqa: S704 - fixed shapes, the status only picks one
        '<svg class="chart-dot" xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 24 24" '
        f'aria-hidden="true" focusable="false">{_node("12", 12, status)}</svg>'
    )


def swatch(color: str) -> Markup:
    """A small square of `color`, for a legend."""
    return Markup(  # noqa: S704 - the colour is escaped
        '<svg class="chart-swatch" xmlns="http://www.w3.org/2000/svg" width="14" height="14" viewBox="0 0 14 14" '
        f'aria-hidden="true" focusable="false"><rect width="14" height="14" rx="3" fill="{escape(color)}"/></svg>'
    )


def cumulative_chart(
    totals: Sequence[int], *, top: int, label: str, goal: int | None = None, width: int = 640, height: int = 200
) -> Markup:
    """A running total, one value per day (`totals[i]` at the end of day i), as a line over a filled area from 0 at
    the start; `top` is the value at the chart's top edge (see nice_ceiling), `goal` a dashed line. The chart is
    stretched to its box (the page gives it a height); its strokes keep their width."""
    top = max(top, 1)
    days = max(len(totals), 1)

    def y(value: int) -> float:
        return round(height - min(max(value, 0), top) * height / top, 2)

    points = [(0.0, float(height))] + [(round((i + 1) * width / days, 2), y(value)) for i, value in enumerate(totals)]
    grid = "".join(
        f'<line x1="0" y1="{y(top * quarter // 4)}" x2="{width}" y2="{y(top * quarter // 4)}" '
        f'stroke="{COLORS["grid"]}" stroke-width="1" vector-effect="non-scaling-stroke"/>'
        for quarter in (1, 2, 3, 4)
    )
    baseline = (
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="{COLORS["goal"]}" stroke-width="1" '
        'vector-effect="non-scaling-stroke"/>'
    )
    drawn = ""
    if totals:
        line = " ".join(f"{px},{py}" for px, py in points)
        area = line + f" {points[-1][0]},{height}"
        drawn = (
            f'<polygon points="{area}" fill="{COLORS["area"]}"/>'
            f'<polyline points="{line}" fill="none" stroke="{COLORS["line"]}" stroke-width="2.5" '
            'stroke-linejoin="round" vector-effect="non-scaling-stroke"/>'
        )
    goal_line = ""
    if goal is not None and 0 < goal <= top:
        goal_line = (
            f'<line x1="0" y1="{y(goal)}" x2="{width}" y2="{y(goal)}" stroke="{COLORS["goal"]}" stroke-width="1.5" '
            'stroke-dasharray="6 4" vector-effect="non-scaling-stroke"/>'
        )
    extra = f' viewBox="0 0 {width} {height}" preserveAspectRatio="none" width="100%" height="{height}"'
    body = grid + drawn + goal_line + baseline
    return Markup(_svg_open("chart-line", label, extra=extra) + body + "</svg>")  # noqa: S704 - numbers and escaped text
