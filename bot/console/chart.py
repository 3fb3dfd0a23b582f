"""A line chart as plain geometry for an inline SVG: no JavaScript, no library."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 36
#: Okabe-Ito colours (told apart with the common colour-vision deficiencies) and a wine red.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#882255",
)
#: Horizontal grid lines above zero.
STEPS = 4


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline points>
    total: int


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]


def _step(value: int) -> int:
    """The grid step: the smallest 1, 2 or 5 times a power of ten with STEPS steps >= value."""
    power = 1
    while True:
        for factor in (1, 2, 5):
            if power * factor * STEPS >= value:
                return power * factor
        power *= 10


def line_chart(labels: list[str], series: dict[str, list[int]]) -> Chart:
    """Lay out one line per series over the ``labels`` (one per day)."""
    step = _step(max((max(values, default=0) for values in series.values()), default=0))
    top = step * STEPS
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slots = max(1, len(labels) - 1)

    def x(index: int) -> float:
        return round(LEFT + plot_w * index / slots, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - value / top), 1)

    lines = tuple(
        Line(
            label,
            PALETTE[number % len(PALETTE)],
            " ".join(f"{x(i)},{y(value)}" for i, value in enumerate(values)),
            sum(values),
        )
        for number, (label, values) in enumerate(series.items())
    )
    y_ticks = tuple(Tick(y(step * n), f"{step * n:,}") for n in range(STEPS + 1))
    # About seven date labels fit under the plot on a phone.
    every = max(1, -(-len(labels) // 7))
    x_ticks = tuple(Tick(x(i), label) for i, label in enumerate(labels) if i % every == 0)
    return Chart(WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM, lines, y_ticks, x_ticks)
