"""Small charts as inline SVG, drawn on the server: no chart library, no CDN (the
station's network is closed), no script, and they print. Geometry only; the template
(``dashboard_charts.html``) turns it into ``<rect>`` and ``<path>`` elements, the
stylesheet colours them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from controller.localtime import local

WIDTH, HEIGHT = 420, 200
LEFT, RIGHT, TOP, BOTTOM = 34, 18, 10, 24
SERIES_CLASSES = ("k0", "k1", "k2", "k3", "k4", "k5")


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str


@dataclass
class Chart:
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    line: str = ""
    area: str = ""
    legend: list[tuple[str, str]] = field(default_factory=list)
    total: float = 0

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def base(self) -> float:
        return self.height - BOTTOM

    @property
    def right(self) -> float:
        return self.width - RIGHT


def nice_max(value: float) -> float:
    """The axis' top: 1, 2 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def _number(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def _y_ticks(chart: Chart, top: float) -> None:
    span = chart.base - TOP
    chart.y_ticks = [(chart.base - span * f, _number(top * f)) for f in (0, 0.5, 1)]


def bar_chart(title: str, unit: str, days: list[date], series: dict[str, list[float]],
              ) -> Chart:
    """Bars per day, stacked by series (one series: plain bars)."""
    chart = Chart(title, unit)
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    chart.total = sum(totals)
    top = nice_max(max(totals, default=0))
    _y_ticks(chart, top)
    slot = (chart.right - LEFT) / max(len(days), 1)
    scale = (chart.base - TOP) / top
    classes = dict(zip(series, SERIES_CLASSES * 4, strict=False))
    chart.legend = [(classes[name], name) for name in series] if len(series) > 1 else []
    for i, day in enumerate(days):
        y = chart.base
        for name, values in series.items():
            if not values[i]:
                continue
            h = values[i] * scale
            y -= h
            label = f"{day:%d/%m}: {_number(values[i])} {unit}"
            chart.bars.append(Bar(round(LEFT + i * slot + slot * 0.15, 1), round(y, 1),
                                  round(slot * 0.7, 1), round(h, 1), classes[name],
                                  f"{name} · {label}" if len(series) > 1 else label))
        if i % 5 == (len(days) - 1) % 5:
            chart.x_ticks.append((round(LEFT + (i + 0.5) * slot, 1), f"{day:%d/%m}"))
    return chart


def line_chart(title: str, unit: str, points: list[tuple[datetime, float, float]],
               start: datetime, end: datetime) -> Chart:
    """A value over time (``(at, value, of_total)``), the area under it shaded; the axis'
    top is the largest total (all nodes)."""
    chart = Chart(title, unit)
    chart.total = len(points)
    top = nice_max(max((t for _, _, t in points), default=0))
    _y_ticks(chart, top)
    span_s = max((end - start).total_seconds(), 1)

    def xy(at: datetime, value: float) -> tuple[float, float]:
        x = LEFT + (chart.right - LEFT) * (at - start).total_seconds() / span_s
        return round(x, 1), round(chart.base - (chart.base - TOP) * value / top, 1)

    coords = [xy(at, v) for at, v, _ in points]
    if coords:
        chart.line = "M" + " L".join(f"{x},{y}" for x, y in coords)
        chart.area = (f"M{coords[0][0]},{chart.base} L" + " L".join(f"{x},{y}" for x, y in coords)
                      + f" L{coords[-1][0]},{chart.base} Z")
    days = max(1, round(span_s / 86400))
    for i in range(0, days + 1, max(1, days // 6)):
        at = start + (end - start) * (i / days)
        moment = local(at)
        assert moment is not None
        chart.x_ticks.append((xy(at, 0)[0], f"{moment:%d/%m}"))
    return chart
