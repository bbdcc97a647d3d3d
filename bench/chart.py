"""A plain SVG chart: panels stacked over one time axis, one line each (the soak's plot)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

LEFT, RIGHT, TOP, GAP, BOTTOM, WIDTH, HEIGHT = 80, 30, 40, 36, 44, 900, 170  # panel HEIGHT


@dataclass
class Panel:
    label: str  # the y axis
    color: str
    points: list[tuple[float, float]]


def _step(span: float, ticks: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts `span` into about `ticks`."""
    raw = span / max(1, ticks)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next((f * power for f in (1, 2, 2.5, 5) if raw <= f * power), 10 * power)


def svg_chart(
    title: str,
    panels: Sequence[Panel],
    x_label: str,
    spans: Sequence[tuple[float, float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """Panels stacked over one time axis; `spans` are shaded x ranges and `marks` vertical lines,
    each with a label (shown on the top panel)."""
    plot_w, height = WIDTH - LEFT - RIGHT, TOP + len(panels) * (HEIGHT + GAP) - GAP + BOTTOM
    xs = [x for p in panels for x, _ in p.points] or [0.0, 1.0]
    x0, x1 = min(*xs, 0.0), max(*xs, 1.0)
    x_step = _step(x1 - x0, 8)
    x_ticks = [i * x_step for i in range(math.ceil(x0 / x_step), math.floor(x1 / x_step + 1e-9) + 1)]

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        top, bottom = TOP + index * (HEIGHT + GAP), TOP + index * (HEIGHT + GAP) + HEIGHT
        y_max = max(*(y for _, y in panel.points), 1e-9) * 1.1
        step = _step(y_max, 4)
        y_max = math.ceil(y_max / step) * step

        def sy(y: float, top: float = top, y_max: float = y_max) -> float:
            return top + HEIGHT - y / y_max * HEIGHT

        for start, end, label in spans:
            out.append(
                f'<rect x="{sx(start):.1f}" y="{top}" width="{max(1.0, sx(end) - sx(start)):.1f}" '
                f'height="{HEIGHT}" fill="#e8eef8"/>'
            )
            if index == 0:
                out.append(f'<text x="{sx(start) + 3:.1f}" y="{top + 12}" fill="#557">{escape(label)}</text>')
        out.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{HEIGHT}" fill="none" stroke="#999"/>'
        )
        for tick in (i * step for i in range(round(y_max / step) + 1)):
            y = sy(tick)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:,g}</text>')
        middle = (top + bottom) / 2
        out.append(
            f'<text x="18" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 18 {middle:.1f})" '
            f'fill="{panel.color}">{escape(panel.label)}</text>'
        )
        for tick in x_ticks:
            x = sx(tick)
            out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#999"/>')
            if index == len(panels) - 1:
                out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{tick:,g}</text>')
        for x, label in marks:
            out.append(
                f'<line x1="{sx(x):.1f}" y1="{top}" x2="{sx(x):.1f}" y2="{bottom}" '
                'stroke="#c33" stroke-dasharray="4 3"/>'
            )
            if index == 0:
                out.append(f'<text x="{sx(x) + 3:.1f}" y="{top - 4}" fill="#c33">{escape(label)}</text>')
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in panel.points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{panel.color}" stroke-width="1.6"/>')
    out.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    return "\n".join([*out, "</svg>"]) + "\n"
