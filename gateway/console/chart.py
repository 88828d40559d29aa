"""The rating-over-time chart on a person's timeline: a step line drawn as inline SVG on the server, with a text
alternative (the same facts as a sentence) for screen readers. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

#: Register ratings from least to most support needed (the chart's rows, bottom to top).
LEVELS = ("green", "amber", "red", "blue")
#: Colours with at least 4.5:1 contrast on white (labels are also written out: colour is never the only cue).
COLOURS = {"green": "#1d6b2f", "amber": "#8a5300", "red": "#b01c1c", "blue": "#1d4f91"}
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 20, 40


@dataclass(frozen=True, slots=True)
class RatingPoint:
    on: date
    rating: str


def description(points: list[RatingPoint]) -> str:
    """The text alternative: every rating with its date, in order."""
    if not points:
        return "No register ratings recorded."
    steps = "; ".join(f"{p.rating} from {p.on.isoformat()}" for p in points)
    return f"Register rating over time: {steps}."


def rating_chart(points: list[RatingPoint], today: date) -> Markup:
    """An SVG step chart of the rating from the first decision to ``today`` (empty markup without ratings)."""
    known = [p for p in sorted(points, key=lambda p: p.on) if p.rating in LEVELS]
    if not known:
        return Markup("")
    start, end = known[0].on, max(today, known[-1].on)
    span = max((end - start).days, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: date) -> float:
        return LEFT + plot_w * (day - start).days / span

    def y(rating: str) -> float:
        return TOP + plot_h * (len(LEVELS) - 1 - LEVELS.index(rating)) / (len(LEVELS) - 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'role="img" aria-labelledby="rating-chart-title rating-chart-desc" class="rating-chart">',
        '<title id="rating-chart-title">Register rating over time</title>',
        f'<desc id="rating-chart-desc">{escape(description(known))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for level in LEVELS:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(level):.1f}" y2="{y(level):.1f}" stroke="#d0d4d8"/>'
            f'<text x="{LEFT - 8}" y="{y(level) + 4:.1f}" text-anchor="end" font-size="13" '
            f'fill="{COLOURS[level]}">{level}</text>'
        )
    path = []
    for i, point in enumerate(known):
        until = known[i + 1].on if i + 1 < len(known) else end
        path.append(f"{'M' if i == 0 else 'L'}{x(point.on):.1f},{y(point.rating):.1f}")
        path.append(f"L{x(until):.1f},{y(point.rating):.1f}")
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="#0b0c0c" stroke-width="2"/>')
    for point in known:
        parts.append(
            f'<circle cx="{x(point.on):.1f}" cy="{y(point.rating):.1f}" r="5" fill="{COLOURS[point.rating]}"/>'
        )
    for day, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(day):.1f}" y="{HEIGHT - 12}" text-anchor="{anchor}" font-size="12" '
            f'fill="#0b0c0c">{day.isoformat()}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
