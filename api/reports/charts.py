"""Small server-side SVG charts for the report: vertical grouped bars over time and horizontal
bars per item. Hand-built rather than matplotlib: three chart shapes do not justify a
plotting stack of ~40 MB in the api image, and plain SVG renders offline in any browser and in
Chromium's PDF printer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 900
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 30, 60
_AXIS = "#444444"
_GRID = "#dddddd"


@dataclass(frozen=True, slots=True)
class Series:
    """One coloured set of bars, one value per category (None: unknown, no bar)."""

    label: str
    colour: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2, 2.5 or 5 × a power of ten)."""
    if value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10.0 * power


def _tick(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.2e}"


def _empty(title: str, message: str, height: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
            f'height="{height}" viewBox="0 0 {WIDTH} {height}" class="chart empty">'
            f'<title>{escape(title)}</title>'
            f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{height - 1}" fill="none" '
            f'stroke="{_GRID}"/><text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" '
            f'fill="#777777" font-size="14">{escape(message)}</text></svg>')


def column_chart(*, title: str, categories: Sequence[str], series: Sequence[Series],
                 unit: str, empty: str, height: int = 300, maximum: float | None = None) -> str:
    """Grouped vertical bars: one group per category (a day, a month), one bar per series."""
    peak = max((v for s in series for v in s.values if v is not None), default=None)
    if peak is None or not categories:
        return _empty(title, empty, height)
    top = maximum if maximum is not None else _nice_max(peak)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    group_w = plot_w / len(categories)
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}" class="chart">',
             f'<title>{escape(title)}</title>']
    for i in range(5):
        value = top * i / 4
        y = _TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}" '
                     f'stroke="{_GRID}"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end" font-size="11">{_tick(value)}</text>')
    parts.append(f'<text x="14" y="{_TOP + plot_h / 2:.1f}" font-size="11" '
                 f'transform="rotate(-90 14 {_TOP + plot_h / 2:.1f})" '
                 f'text-anchor="middle">{escape(unit)}</text>')
    # Label every category when they fit, else about fifteen of them.
    every = max(1, math.ceil(len(categories) / 15))
    for c, category in enumerate(categories):
        x0 = _LEFT + c * group_w + group_w * 0.1
        for s_index, s in enumerate(series):
            bar = s.values[c]
            if bar is None or bar <= 0:
                continue
            h = plot_h * min(bar, top) / top
            parts.append(f'<rect x="{x0 + s_index * bar_w:.1f}" y="{_TOP + plot_h - h:.1f}" '
                         f'width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}">'
                         f'<title>{escape(category)} {escape(s.label)}: {bar:g}</title></rect>')
        if c % every == 0:
            parts.append(f'<text x="{_LEFT + (c + 0.5) * group_w:.1f}" '
                         f'y="{_TOP + plot_h + 16}" text-anchor="middle" font-size="11">'
                         f'{escape(category)}</text>')
    parts.append(f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}" '
                 f'y2="{_TOP + plot_h}" stroke="{_AXIS}"/><line x1="{_LEFT}" y1="{_TOP}" '
                 f'x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="{_AXIS}"/>')
    x = _LEFT
    for s in series:
        parts.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" '
                     f'fill="{s.colour}"/><text x="{x + 16}" y="{height - 12}" '
                     f'font-size="12">{escape(s.label)}</text>')
        x += 24 + 7 * len(s.label)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(*, title: str, items: Sequence[tuple[str, float | None]], unit: str,
              colour: str, empty: str, write: Callable[[float], str]) -> str:
    """Horizontal bars, one per item (a batch, a material), with its value written beside
    by `write` (the report's language writes its numbers)."""
    known = [(label, value) for label, value in items if value is not None]
    row_h = 26
    height = _TOP + row_h * max(1, len(known)) + 30
    if not known:
        return _empty(title, empty, 120)
    left = 200
    top = _nice_max(max(value for _, value in known))
    plot_w = WIDTH - left - 120
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}" class="chart">',
             f'<title>{escape(title)}</title>']
    for i, (label, value) in enumerate(known):
        y = _TOP + i * row_h
        w = plot_w * max(0.0, value) / top
        parts.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="12">'
                     f'{escape(label)}</text><rect x="{left}" y="{y + 4}" width="{w:.1f}" '
                     f'height="{row_h - 8}" fill="{colour}"/><text x="{left + w + 6:.1f}" '
                     f'y="{y + 17}" font-size="12">{escape(write(value))} {escape(unit)}</text>')
    parts.append(f'<line x1="{left}" y1="{_TOP}" x2="{left}" y2="{height - 30}" '
                 f'stroke="{_AXIS}"/></svg>')
    return "".join(parts)
