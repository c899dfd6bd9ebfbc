"""Server-rendered SVG charts for the operator dashboard: no JavaScript, nothing fetched."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"]
WIDTH, HEIGHT = 620, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 40


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value and value < 1:
        return f"{value:.4f}".rstrip("0")
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def line_chart(*, labels: list[str], series: dict[str, list[float]], title: str, unit: str = "") -> SafeString:
    """One polyline per series over the shared x ``labels``; a legend below; values in tooltips."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max([v for values in series.values() for v in values] + [0]) or 1
    step = plot_w / max(len(labels) - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart line-chart" role="img" viewBox="0 0 {WIDTH} '
             f'{HEIGHT + 18 * ((len(series) + 3) // 4)}" width="{WIDTH}"><title>{escape(title)}</title>']
    for i in range(5):  # grid and y labels
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#6b7280">'
                     f'{escape(_fmt(peak * i / 4))}{escape(unit)}</text>')
    ticks = max(len(labels) // 6, 1)
    for i, label in enumerate(labels):
        if i % ticks == 0:
            parts.append(f'<text x="{LEFT + i * step:.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle" '
                         f'fill="#6b7280">{escape(label)}</text>')
    for n, (name, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{LEFT + i * step:.1f},{TOP + plot_h - plot_h * v / peak:.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="series" data-series="{escape(name)}" fill="none" stroke="{colour}" '
                     f'stroke-width="2" points="{points}"><title>{escape(name)}</title></polyline>')
        for i, v in enumerate(values):
            if v:
                parts.append(f'<circle cx="{LEFT + i * step:.1f}" cy="{TOP + plot_h - plot_h * v / peak:.1f}" r="2.5" '
                             f'fill="{colour}"><title>{escape(name)} {escape(labels[i])}: '
                             f'{escape(_fmt(v))}{escape(unit)}</title></circle>')
        lx, ly = LEFT + (n % 4) * 140, HEIGHT - 6 + 18 * (n // 4)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{ly}" font-size="11" fill="#111827">{escape(name[:20])}</text>')
    if not series:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#9ca3af">No data</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above  # nosec B308 B703


def bar_chart(*, items: list[tuple[str, float]], title: str, unit: str = "") -> SafeString:
    """Horizontal bars, largest first."""
    row, label_w = 22, 150
    height = max(len(items), 1) * row + 10
    peak = max([v for _, v in items] + [0]) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bar-chart" role="img" viewBox="0 0 {WIDTH} '
             f'{height}" width="{WIDTH}"><title>{escape(title)}</title>']
    for n, (name, value) in enumerate(items):
        y = 5 + n * row
        w = (WIDTH - label_w - 80) * value / peak
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end" fill="#111827">'
                     f'{escape(name[:24])}</text>'
                     f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" '
                     f'fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(name)}: {escape(_fmt(value))}'
                     f'{escape(unit)}</title></rect>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="11" fill="#374151">'
                     f'{escape(_fmt(value))}{escape(unit)}</text>')
    if not items:
        parts.append(f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" fill="#9ca3af">No data</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above  # nosec B308 B703
