"""A plain SVG chart: panels stacked over one time axis (the soak's plot)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float]]


@dataclass
class Panel:
    label: str  # the y axis
    series: list[Series]


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def svg_chart(
    title: str,
    panels: Sequence[Panel],
    x_label: str,
    spans: Sequence[tuple[float, float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
    width: int = 900,
    panel_height: int = 170,
) -> str:
    """Panels stacked over one time axis, one line per series; `spans` are shaded x ranges and
    `marks` vertical lines, each with a label."""
    left, right, top, gap, bottom = 80, 150, 40, 36, 44
    plot_w = width - left - right
    height = top + len(panels) * (panel_height + gap) - gap + bottom
    xs = [x for p in panels for s in p.series for x, _ in s.points] or [0.0, 1.0]
    x0, x1 = min(*xs, 0.0), max(*xs, 1.0)
    step_x = _nice_step(x1 - x0, 8)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        y_top = top + index * (panel_height + gap)
        y_bottom = y_top + panel_height
        ys = [y for s in panel.series for _, y in s.points] or [0.0, 1.0]
        y_max = max(*ys, 1e-9) * 1.1
        step_y = _nice_step(y_max, 4)
        y_max = math.ceil(y_max / step_y) * step_y

        def sy(y: float, y_top: float = y_top, y_max: float = y_max) -> float:
            return y_top + panel_height - y / y_max * panel_height

        for start, end, label in spans:
            out.append(
                f'<rect x="{sx(start):.1f}" y="{y_top}" width="{max(1.0, sx(end) - sx(start)):.1f}" '
                f'height="{panel_height}" fill="#e8eef8"/>'
            )
            if index == 0:
                out.append(
                    f'<text x="{sx(start) + 3:.1f}" y="{y_top + 12}" fill="#557">{escape(label)}</text>'
                )
        out.append(
            f'<rect x="{left}" y="{y_top}" width="{plot_w}" height="{panel_height}" '
            'fill="none" stroke="#999"/>'
        )
        tick = 0.0
        while tick <= y_max + 1e-9:
            y = sy(tick)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(tick)}</text>')
            tick += step_y
        out.append(
            f'<text x="18" y="{(y_top + y_bottom) / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 18 {(y_top + y_bottom) / 2:.1f})">{escape(panel.label)}</text>'
        )
        tick = math.ceil(x0 / step_x) * step_x
        while tick <= x1 + 1e-9:
            x = sx(tick)
            out.append(f'<line x1="{x:.1f}" y1="{y_bottom}" x2="{x:.1f}" y2="{y_bottom + 4}" stroke="#999"/>')
            if index == len(panels) - 1:
                out.append(f'<text x="{x:.1f}" y="{y_bottom + 16}" text-anchor="middle">{_fmt(tick)}</text>')
            tick += step_x
        for x, label in marks:
            out.append(
                f'<line x1="{sx(x):.1f}" y1="{y_top}" x2="{sx(x):.1f}" y2="{y_bottom}" '
                'stroke="#c33" stroke-dasharray="4 3"/>'
            )
            if index == 0:
                out.append(f'<text x="{sx(x) + 3:.1f}" y="{y_top - 4}" fill="#c33">{escape(label)}</text>')
        for n, series in enumerate(panel.series):
            if series.points:
                path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in series.points)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{series.color}" stroke-width="1.6"/>'
                )
            ly = y_top + 14 + n * 16
            out.append(
                f'<line x1="{left + plot_w + 10}" y1="{ly - 4}" x2="{left + plot_w + 28}" y2="{ly - 4}" '
                f'stroke="{series.color}" stroke-width="2"/>'
            )
            out.append(f'<text x="{left + plot_w + 32}" y="{ly}">{escape(series.name)}</text>')
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
