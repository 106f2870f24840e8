"""An SVG line chart of a comparison: monthly USD against tasks per hour, both on log scales (standard library only)."""

from __future__ import annotations

import math
from collections.abc import Callable
from xml.sax.saxutils import escape

from agentrail_cli.plan.compare import HOURS_PER_MONTH, PLATFORM_LABELS, Comparison, Platform

__all__ = ["PLATFORM_STYLES", "cost_chart_svg"]

#: Colour (Okabe-Ito, safe for colour-blind readers) and dash pattern per platform: lines differ by both.
PLATFORM_STYLES: dict[Platform, tuple[str, str]] = {
    Platform.OURS: ("#0072B2", ""),
    Platform.AGENTCORE: ("#D55E00", "10 5"),
    Platform.FARGATE: ("#009E73", "3 4"),
}

_WIDTH, _HEIGHT = 980, 540
_LEFT, _RIGHT, _TOP, _BOTTOM = 90, 280, 64, 76
_Scale = Callable[[float], float]
_FONT = "font-family='system-ui, -apple-system, Segoe UI, sans-serif'"


def cost_chart_svg(comparison: Comparison, title: str = "Monthly compute cost by traffic") -> str:
    """The comparison as a standalone SVG document.

    One line per platform (colour and dash pattern, with a legend), each crossover marked and labelled, log axes
    with decade ticks, and a "you are here" marker at ``comparison.at_tasks_per_hour`` when it is set.
    """
    traffic = comparison.tasks_per_hour
    x_low, x_high = math.log10(comparison.min_tasks_per_hour), math.log10(comparison.max_tasks_per_hour)
    positive = [value for series in comparison.usd_per_month.values() for value in series if value > 0]
    y_low = math.floor(math.log10(min(positive))) if positive else 0
    y_high = math.ceil(math.log10(max(positive))) if positive else 1
    if y_high <= y_low:
        y_high = y_low + 1
    plot_width, plot_height = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def x_of(tasks_per_hour: float) -> float:
        return _LEFT + (math.log10(tasks_per_hour) - x_low) / (x_high - x_low) * plot_width

    def y_of(usd: float) -> float:
        exponent = math.log10(usd) if usd > 0 else y_low
        return _TOP + plot_height - (min(max(exponent, y_low), y_high) - y_low) / (y_high - y_low) * plot_height

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' viewBox='0 0 {_WIDTH} {_HEIGHT}' "
        f"role='img' aria-labelledby='chart-title chart-desc' {_FONT}>",
        f"<title id='chart-title'>{escape(title)}</title>",
        f"<desc id='chart-desc'>{escape(_description(comparison))}</desc>",
        f"<rect width='{_WIDTH}' height='{_HEIGHT}' fill='#ffffff'/>",
        f"<text x='{_LEFT}' y='30' font-size='18' font-weight='600' fill='#222'>{escape(title)}</text>",
        f"<text x='{_LEFT}' y='50' font-size='12' fill='#555'>{escape(f'{comparison.region}; compute only (Lambda + API Gateway vs the alternatives); list prices, no free tier')}</text>",
    ]
    parts.extend(_axes(x_of, y_of, x_low, x_high, y_low, y_high, plot_width, plot_height))
    for platform, series in comparison.usd_per_month.items():
        colour, dash = PLATFORM_STYLES[platform]
        path = " ".join(
            f"{'M' if index == 0 else 'L'}{x_of(t):.2f},{y_of(usd):.2f}"
            for index, (t, usd) in enumerate(zip(traffic, series, strict=True))
        )
        dash_attribute = f" stroke-dasharray='{dash}'" if dash else ""
        parts.append(
            f"<path class='series' data-platform='{platform.value}' d='{path}' fill='none' stroke='{colour}' stroke-width='2.5'"
            f"{dash_attribute} stroke-linejoin='round'><title>{escape(PLATFORM_LABELS[platform])}</title></path>"
        )
    if (
        comparison.at_tasks_per_hour is not None
        and comparison.min_tasks_per_hour <= comparison.at_tasks_per_hour <= comparison.max_tasks_per_hour
    ):
        x = x_of(comparison.at_tasks_per_hour)
        parts.append(
            f"<g class='you-are-here'><line x1='{x:.2f}' y1='{_TOP}' x2='{x:.2f}' y2='{_TOP + plot_height}' stroke='#444' stroke-width='1.5' stroke-dasharray='2 2'/>"
            f"<text x='{x + 4:.2f}' y='{_TOP + 14}' font-size='12' fill='#222'>you are here: {escape(_count(comparison.at_tasks_per_hour))}/h</text></g>"
        )
    parts.extend(_crossover_marks(comparison, x_of, y_of))
    parts.extend(_legend(comparison))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _axes(
    x_of: _Scale, y_of: _Scale, x_low: float, x_high: float, y_low: int, y_high: int, plot_width: float, plot_height: float
) -> list[str]:
    bottom = _TOP + plot_height
    parts = ["<g class='axes' font-size='12' fill='#333'>"]
    parts.append(f"<rect x='{_LEFT}' y='{_TOP}' width='{plot_width}' height='{plot_height}' fill='none' stroke='#999'/>")
    for exponent in range(math.ceil(x_low - 1e-9), math.floor(x_high + 1e-9) + 1):
        x = x_of(10.0**exponent)
        parts.append(f"<line class='grid' x1='{x:.2f}' y1='{_TOP}' x2='{x:.2f}' y2='{bottom}' stroke='#e4e4e4'/>")
        parts.append(f"<text class='x-tick' x='{x:.2f}' y='{bottom + 18}' text-anchor='middle'>{_count(10.0**exponent)}</text>")
    for exponent in range(y_low, y_high + 1):
        y = y_of(10.0**exponent)
        parts.append(f"<line class='grid' x1='{_LEFT}' y1='{y:.2f}' x2='{_LEFT + plot_width}' y2='{y:.2f}' stroke='#e4e4e4'/>")
        parts.append(
            f"<text class='y-tick' x='{_LEFT - 8}' y='{y + 4:.2f}' text-anchor='end'>{escape(_usd(10.0**exponent))}</text>"
        )
    parts.append(
        f"<text x='{_LEFT + plot_width / 2:.2f}' y='{bottom + 44}' text-anchor='middle' font-size='13'>tasks per hour (log scale; x {HOURS_PER_MONTH:g} for a month)</text>"
    )
    parts.append(
        f"<text x='22' y='{_TOP + plot_height / 2:.2f}' text-anchor='middle' font-size='13' transform='rotate(-90 22 {_TOP + plot_height / 2:.2f})'>USD per month (log scale)</text>"
    )
    parts.append("</g>")
    return parts


def _crossover_marks(comparison: Comparison, x_of: _Scale, y_of: _Scale) -> list[str]:
    parts = []
    for crossover in comparison.crossovers:
        colour, _ = PLATFORM_STYLES[crossover.alternative]
        for index, point in enumerate(crossover.points[:3]):  # a sawtooth of steps would bury the chart in labels
            x, y = x_of(point.tasks_per_hour), y_of(point.alternative_usd_per_month)
            label = f"{PLATFORM_LABELS[crossover.alternative].split(',')[0]} cheaper {point.alternative_cheaper} {_count(point.tasks_per_hour)}/h"
            anchor = "end" if x > _WIDTH - _RIGHT - 160 else "start"
            dx = -8 if anchor == "end" else 8
            dy = -10 - 16 * index
            parts.append(
                f"<g class='crossover' data-platform='{crossover.alternative.value}'>"
                f"<circle cx='{x:.2f}' cy='{y:.2f}' r='5.5' fill='#ffffff' stroke='{colour}' stroke-width='2.5'/>"
                f"<text x='{x + dx:.2f}' y='{y + dy:.2f}' font-size='12' text-anchor='{anchor}' fill='#222' stroke='#ffffff' stroke-width='4' paint-order='stroke'>{escape(label)}</text>"
                f"<title>{escape(crossover.summary)}</title></g>"
            )
    return parts


def _legend(comparison: Comparison) -> list[str]:
    x, y = _WIDTH - _RIGHT + 20, _TOP + 10
    parts = ["<g class='legend' font-size='12' fill='#222'>"]
    for index, platform in enumerate(comparison.usd_per_month):
        colour, dash = PLATFORM_STYLES[platform]
        row = y + index * 24
        dash_attribute = f" stroke-dasharray='{dash}'" if dash else ""
        parts.append(
            f"<g class='legend-item' data-platform='{platform.value}'>"
            f"<line x1='{x}' y1='{row}' x2='{x + 36}' y2='{row}' stroke='{colour}' stroke-width='2.5'{dash_attribute}/>"
            f"<text x='{x + 44}' y='{row + 4}'>{escape(PLATFORM_LABELS[platform])}</text></g>"
        )
    row = y + len(comparison.usd_per_month) * 24
    parts.append(
        f"<g class='legend-item'><circle cx='{x + 18}' cy='{row}' r='5.5' fill='#ffffff' stroke='#444' stroke-width='2.5'/>"
        f"<text x='{x + 44}' y='{row + 4}'>crossover</text></g>"
    )
    parts.append("</g>")
    return parts


def _description(comparison: Comparison) -> str:
    said = [
        f"Monthly compute cost in {comparison.region} from {_count(comparison.min_tasks_per_hour)} to {_count(comparison.max_tasks_per_hour)} tasks per hour."
    ]
    said.extend(crossover.summary for crossover in comparison.crossovers)
    if comparison.at_tasks_per_hour is not None:
        said.append(f"The requirement's traffic is {comparison.at_tasks_per_hour:,.0f} tasks per hour.")
    return " ".join(said)


def _count(value: float) -> str:
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _usd(value: float) -> str:
    if value >= 1:
        return "$" + _count(value)
    return f"${value:g}"
