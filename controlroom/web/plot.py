"""A spectrum plotted against a reference as inline SVG (prints as vectors, needs no JS)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT = 900, 360
MARGIN = {"left": 50, "right": 20, "top": 20, "bottom": 40}


def _path(x: np.ndarray, y: np.ndarray, x0: float, x1: float) -> str:
    w = WIDTH - MARGIN["left"] - MARGIN["right"]
    h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    # wavenumbers run right to left, as chemists read IR spectra
    px = MARGIN["left"] + (x1 - x) / (x1 - x0) * w
    py = MARGIN["top"] + (1.0 - y) * h
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))


def _normalised(y: np.ndarray) -> np.ndarray:
    y = np.nan_to_num(np.asarray(y, dtype=np.float64))
    lo, hi = float(y.min()), float(y.max())
    return (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)


def spectrum_svg(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    label: str,
    reference: tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray, str] | None = None,
    max_points: int = 1500,
) -> str:
    """SVG of spectrum (*x*, *y*) scaled to 0..1, with an optional (x, y, label) reference."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.size < 2 or xs.size != ys.size:
        raise ValueError("a spectrum needs at least two points and as many y as x")
    step = max(1, xs.size // max_points)
    curves = [(xs[::step], _normalised(ys)[::step], label, "scan")]
    if reference is not None:
        rx, ry = np.asarray(reference[0], dtype=np.float64), np.asarray(reference[1])
        curves.append((rx[::step], _normalised(ry)[::step], reference[2], "reference"))
    x0 = min(float(c[0].min()) for c in curves)
    x1 = max(float(c[0].max()) for c in curves)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spectrum" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-label="{escape(label)}">',
        f'<rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" '
        f'width="{WIDTH - MARGIN["left"] - MARGIN["right"]}" '
        f'height="{HEIGHT - MARGIN["top"] - MARGIN["bottom"]}" class="frame"/>',
    ]
    w = WIDTH - MARGIN["left"] - MARGIN["right"]
    for tick in np.arange(np.ceil(x0 / 500) * 500, x1 + 1, 500):
        px = MARGIN["left"] + (x1 - tick) / (x1 - x0) * w
        parts.append(
            f'<text x="{px:.0f}" y="{HEIGHT - 22}" class="tick">{tick:.0f}</text>'
            f'<line x1="{px:.0f}" x2="{px:.0f}" y1="{HEIGHT - MARGIN["bottom"]}" '
            f'y2="{HEIGHT - MARGIN["bottom"] + 5}" class="frame"/>'
        )
    parts.append(
        f'<text x="{MARGIN["left"] + w / 2:.0f}" y="{HEIGHT - 4}" class="axis">'
        "wavenumber (1/cm)</text>"
    )
    for i, (cx, cy, name, cls) in enumerate(curves):
        parts.append(f'<polyline class="{cls}" fill="none" points="{_path(cx, cy, x0, x1)}"/>')
        parts.append(
            f'<text x="{WIDTH - MARGIN["right"] - 8}" y="{MARGIN["top"] + 16 + 16 * i}" '
            f'class="legend {cls}" text-anchor="end">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
