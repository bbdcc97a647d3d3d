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


def _text(x: float, y: float, label: str, attributes: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}"{attributes}>{escape(label)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, attributes: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {attributes}/>'


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
        _text(LEFT, 22, title, ' font-size="15" font-weight="bold"'),
    ]
    for index, panel in enumerate(panels):
        top, bottom = TOP + index * (HEIGHT + GAP), TOP + index * (HEIGHT + GAP) + HEIGHT
        y_max = max(*(y for _, y in panel.points), 1e-9) * 1.1
        step = _step(y_max, 4)
        y_max = math.ceil(y_max / step) * step

        def sy(y: float, top: float = top, y_max: float = y_max) -> float:
            return top + HEIGHT - y / y_max * HEIGHT

        for start, end, label in spans:
            width = max(1.0, sx(end) - sx(start))
            out.append(
                f'<rect x="{sx(start):.1f}" y="{top}" width="{width:.1f}" height="{HEIGHT}" fill="#e8eef8"/>'
            )
            if index == 0:
                out.append(_text(sx(start) + 3, top + 12, label, ' fill="#557"'))
        out.append(
            f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{HEIGHT}" fill="none" stroke="#999"/>'
        )
        for tick in (i * step for i in range(round(y_max / step) + 1)):
            out.append(_line(LEFT, sy(tick), LEFT + plot_w, sy(tick), 'stroke="#eee"'))
            out.append(_text(LEFT - 6, sy(tick) + 4, f"{tick:,g}", ' text-anchor="end"'))
        middle = (top + bottom) / 2
        rotated = f' text-anchor="middle" transform="rotate(-90 18 {middle:.1f})" fill="{panel.color}"'
        out.append(_text(18, middle, panel.label, rotated))
        for tick in x_ticks:
            out.append(_line(sx(tick), bottom, sx(tick), bottom + 4, 'stroke="#999"'))
            if index == len(panels) - 1:
                out.append(_text(sx(tick), bottom + 16, f"{tick:,g}", ' text-anchor="middle"'))
        for x, label in marks:
            out.append(_line(sx(x), top, sx(x), bottom, 'stroke="#c33" stroke-dasharray="4 3"'))
            if index == 0:
                out.append(_text(sx(x) + 3, top - 4, label, ' fill="#c33"'))
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in panel.points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{panel.color}" stroke-width="1.6"/>')
    out.append(_text(LEFT + plot_w / 2, height - 8, x_label, ' text-anchor="middle"'))
    return "\n".join([*out, "</svg>"]) + "\n"
