"""PNG figures drawn with Pillow alone: labelled image grids and line plots (no matplotlib dependency)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
GRID_LINE = (225, 225, 225)
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75))
GAP = 2


def font(size: int = 12) -> ImageFont.ImageFont:
    """Pillow's bundled font at `size` (bitmap fallback when Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def text_size(draw: ImageDraw.ImageDraw, text: str, face) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    return right - left, bottom - top


def draw_text_grid(
    cells: Sequence[Sequence[np.ndarray]], row_names: Sequence[str], title: str | None = None
) -> Image.Image:
    """Rows of equally sized uint8 (h, w, 3) images, with a name left of each row and an optional title."""
    face = font(13)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(text_size(probe, name, face)[0] for name in row_names) + 10
    title_h = text_size(probe, title, face)[1] + 10 if title else 0
    h, w = cells[0][0].shape[:2]
    columns = max(len(row) for row in cells)
    image = Image.new("RGB", (label_w + columns * (w + GAP), title_h + len(cells) * (h + GAP)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((4, 4), title, fill=INK, font=face)
    for r, (name, row) in enumerate(zip(row_names, cells)):
        top = title_h + r * (h + GAP)
        draw.text((4, top + h // 2 - 7), name, fill=INK, font=face)
        for c, cell in enumerate(row):
            image.paste(Image.fromarray(cell), (label_w + c * (w + GAP), top))
    return image


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


def line_plot(
    series: dict[str, Sequence[float]],
    path: str,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (640, 400),
    smooth: int = 1,
) -> None:
    """Save a PNG line plot of named series (x = 1, 2, ... per series), with axes, ticks and a legend.

    Args:
        series: name -> y values (None values are skipped).
        path: output PNG.
        title: drawn above the plot.
        xlabel: x-axis label.
        ylabel: y-axis label.
        size: image (width, height) in pixels.
        smooth: moving-average window applied to each series (1 = raw).
    """
    face, small = font(14), font(11)
    width, height = size
    left, right, top, bottom = 64, 16, 46, 46
    curves = {name: _moving_average([v for v in values if v is not None], smooth) for name, values in series.items()}
    every = [v for values in curves.values() for v in values]
    y_low, y_high = (min(every), max(every)) if every else (0.0, 1.0)
    pad = 0.05 * (y_high - y_low or 1.0)
    y_low, y_high = y_low - pad, y_high + pad
    x_high = max((len(v) for v in curves.values()), default=1)
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - 1) / max(x_high - 1, 1) * (width - left - right)
        return px, top + (y_high - y) / (y_high - y_low) * (height - top - bottom)

    for tick in nice_ticks(y_low, y_high):
        _, py = to_px(1, tick)
        draw.line([(left, py), (width - right, py)], fill=GRID_LINE)
        draw.text((4, py - 6), _label(tick), fill=INK, font=small)
    for tick in nice_ticks(1, x_high):
        px, _ = to_px(tick, y_low)
        draw.text((px - 8, height - bottom + 4), _label(tick), fill=INK, font=small)
    draw.rectangle([left, top, width - right, height - bottom], outline=INK)
    for colour, values in zip(COLOURS * 4, curves.values()):
        if len(values) > 1:
            draw.line([to_px(i + 1, v) for i, v in enumerate(values)], fill=colour, width=2)
    draw.text((left, 6), title, fill=INK, font=face)
    draw.text(((width - text_size(draw, xlabel, small)[0]) / 2, height - 20), xlabel, fill=INK, font=small)
    draw.text((4, top - 16), ylabel, fill=INK, font=small)
    for i, (colour, name) in enumerate(zip(COLOURS * 4, curves)):
        y = top + 8 + 16 * i
        draw.line([(width - right - 150, y + 6), (width - right - 130, y + 6)], fill=colour, width=3)
        draw.text((width - right - 124, y), name, fill=INK, font=small)
    image.save(path)


def _moving_average(values: list[float], window: int) -> list[float]:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(values, dtype=np.float64), kernel, mode="valid").tolist()
