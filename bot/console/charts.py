"""Charts as SVG drawn on the server: no script, nothing loaded from elsewhere.

Every text that goes into the SVG is escaped (a question or an article title is user or source text).
"""
from __future__ import annotations

import datetime as dt
from html import escape

from markupsafe import Markup

GREEN, ORANGE, BLUE, RED, GREY = "#2e7d32", "#ef6c00", "#1565c0", "#c62828", "#9e9e9e"


def days(since: dt.date, until: dt.date) -> list[str]:
    out, d = [], since
    while d <= until:
        out.append(d.isoformat())
        d += dt.timedelta(days=1)
    return out


def stacked_bars(title: str, labels: list[str], series: list[tuple[str, str, list[int]]],
                 width: int = 720, height: int = 220) -> Markup:
    """Bars per label (a day), each stacking the series [(name, colour, values)], with a legend and a y scale."""
    left, right, top, bottom = 40, 10, 28, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))]
    peak = max(totals + [1])
    step = _nice_step(peak)
    top_value = step * -(-peak // step)
    n = max(len(labels), 1)
    bar_w = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="{escape(title)}" class="chart">',
             f'<title>{escape(title)}</title>']
    for v in range(0, top_value + 1, step):  # grid and y labels
        y = top + plot_h - plot_h * v / top_value
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#555">{v}</text>')
    for i, label in enumerate(labels):
        x = left + i * bar_w + bar_w * 0.15
        y = top + plot_h
        tip = [f"{label}"] + [f"{name} {values[i]}" for name, _, values in series]
        for name, colour, values in series:
            h = plot_h * values[i] / top_value
            if h > 0:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.7:.1f}" height="{h:.1f}" '
                             f'fill="{colour}"><title>{escape("，".join(tip))}</title></rect>')
        if len(labels) <= 14 or i % max(1, len(labels) // 10) == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{left + (i + 0.5) * bar_w:.1f}" y="{height - bottom + 16}" font-size="10" '
                         f'text-anchor="middle" fill="#555">{escape(label[5:])}</text>')
    lx = left
    for name, colour, values in series:
        parts.append(f'<rect x="{lx}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="18" font-size="12" fill="#333">{escape(name)}（{sum(values)}）</text>')
        lx += 28 + 13 * (len(name) + len(str(sum(values))) + 2)
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(title: str, rows: list[tuple[str, int]], colour: str = BLUE, width: int = 540) -> Markup:
    """One bar per (label, value), longest first as given; the label is cut to fit."""
    if not rows:
        return Markup('<p class="muted">暂无数据。</p>')
    row_h, label_w = 26, 300
    height = row_h * len(rows) + 8
    peak = max(v for _, v in rows) or 1
    bar_space = width - label_w - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        short = label if len(label) <= 24 else label[:11] + "…" + label[-12:]
        w = bar_space * value / peak
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end" fill="#333">'
                     f'{escape(short)}<title>{escape(label)}</title></text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12" fill="#333">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return 10_000
