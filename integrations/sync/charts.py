"""Stacked bar charts drawn on the server as inline SVG: no script, no external asset.

The admin runs on closed networks, so a chart is plain markup: one column per bucket,
one coloured segment per event status, a ``<title>`` per column (shown on hover) with
the exact counts, and axis labels. Text takes the page's colour, so dark mode works.
"""

from dataclasses import dataclass

from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from integrations.sync.models import EventStatus

# Bottom to top: what went well first, what needs someone last (on top, seen first).
STATUS_ORDER = (
    EventStatus.DELIVERED,
    EventStatus.SKIPPED,
    EventStatus.RECEIVED,
    EventStatus.QUEUED,
    EventStatus.REJECTED,
    EventStatus.FAILED,
)
STATUS_COLOURS = {
    EventStatus.DELIVERED: "#2e7d32",
    EventStatus.SKIPPED: "#9e9e9e",
    EventStatus.RECEIVED: "#90caf9",
    EventStatus.QUEUED: "#1e88e5",
    EventStatus.REJECTED: "#f9a825",
    EventStatus.FAILED: "#c62828",
}

WIDTH = 720
HEIGHT = 200
MARGIN_LEFT = 48
MARGIN_RIGHT = 8
MARGIN_TOP = 10
MARGIN_BOTTOM = 24
PLOT_WIDTH = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
PLOT_HEIGHT = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
BASELINE = MARGIN_TOP + PLOT_HEIGHT
BAR_SHARE = 0.72  # of a column's width; the rest is the gap between bars


@dataclass(frozen=True)
class Bar:
    """One column: events per status, the label under it ("" for none), the hover text."""

    counts: dict[str, int]
    label: str
    title: str


def legend() -> list[tuple[str, str]]:
    """(status label, colour) in stacking order, for the HTML legend beside a chart."""
    return [(str(status.label), STATUS_COLOURS[status]) for status in STATUS_ORDER]


def axis_top(value: int) -> tuple[int, int]:
    """A round top of the y axis at or above ``value``, and the step between its ticks.

    Steps are 1, 2 or 5 times a power of ten, at most four ticks above zero.
    """
    if value <= 0:
        return 1, 1
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            ticks = -(-value // step)
            if ticks <= 4:
                return ticks * step, step
        magnitude *= 10


def _coordinate(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _y_axis(top: int, step: int) -> SafeString:
    lines = []
    for value in range(0, top + 1, step):
        y = _coordinate(BASELINE - value / top * PLOT_HEIGHT)
        lines.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="sync-chart-grid"/>'
                '<text x="{}" y="{}" text-anchor="end" dy="0.32em">{}</text>',
                MARGIN_LEFT,
                WIDTH - MARGIN_RIGHT,
                y,
                y,
                MARGIN_LEFT - 6,
                y,
                number_format(value),
            )
        )
    return mark_safe("".join(lines))


def _column(index: int, bar: Bar, *, slot: float, top: int) -> SafeString:
    x = MARGIN_LEFT + index * slot
    width = slot * BAR_SHARE
    left = x + (slot - width) / 2
    segments = []
    y = float(BASELINE)
    for status in STATUS_ORDER:
        count = bar.counts.get(status, 0)
        if not count:
            continue
        height = count / top * PLOT_HEIGHT
        y -= height
        segments.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-status="{}"/>',
                _coordinate(left),
                _coordinate(y),
                _coordinate(width),
                _coordinate(height),
                STATUS_COLOURS[status],
                status,
            )
        )
    label = (
        format_html(
            '<text x="{}" y="{}" text-anchor="middle">{}</text>',
            _coordinate(x + slot / 2),
            HEIGHT - 8,
            bar.label,
        )
        if bar.label
        else ""
    )
    # The transparent rectangle spans the whole column, so even an empty bucket has
    # something to hover over for its title.
    return format_html(
        '<g class="sync-chart-bar"><title>{}</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="transparent"/>{}{}</g>',
        bar.title,
        _coordinate(x),
        MARGIN_TOP,
        _coordinate(slot),
        PLOT_HEIGHT,
        mark_safe("".join(segments)),
        label,
    )


def stacked_bars_svg(*, bars: list[Bar], description: str) -> SafeString:
    """An inline ``<svg>`` of stacked bars; ``description`` is read out by screen readers."""
    top, step = axis_top(max((sum(bar.counts.values()) for bar in bars), default=0))
    slot = PLOT_WIDTH / max(len(bars), 1)
    columns = format_html_join(
        "", "{}", ((_column(i, bar, slot=slot, top=top),) for i, bar in enumerate(bars))
    )
    return format_html(
        '<svg class="sync-chart" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" '
        'font-size="11" fill="currentColor">{}'
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="sync-chart-axis"/>{}</svg>',
        WIDTH,
        HEIGHT,
        description,
        _y_axis(top, step),
        MARGIN_LEFT,
        WIDTH - MARGIN_RIGHT,
        BASELINE,
        BASELINE,
        columns,
    )
