"""Pictures of detections: labelled person boxes drawn on frames, a PNG grid of keyframes and an animated GIF."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from videomae.apps.plots import COLOURS, draw_text_grid, font

SHORT_SIDE = 256  # frames are enlarged (or reduced) to this short side, so labels stay legible
WHITE, SHADE = (255, 255, 255), (0, 0, 0)


def resized(frame: np.ndarray, short_side: int = SHORT_SIDE) -> Image.Image:
    """uint8 (H, W, 3) -> an RGB image with the given short side."""
    image = Image.fromarray(frame)
    scale = short_side / min(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)


def draw_boxes(frame: np.ndarray, boxes: np.ndarray, labels: list[list[str]], caption: str = "") -> np.ndarray:
    """The frame (resized) with each box (K, 4, normalized x1, y1, x2, y2) outlined in its own colour and its
    label lines written on a tag of that colour above it (inside, when the box touches the top); `caption` in
    the top-left corner. Returns uint8 (H', W', 3)."""
    image = resized(frame)
    draw, face = ImageDraw.Draw(image), font(12)
    width, height = image.size
    for k, (box, lines) in enumerate(zip(boxes, labels)):
        colour = COLOURS[k % len(COLOURS)]
        x1, y1, x2, y2 = (float(v) for v in np.asarray(box) * [width, height, width, height])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        if lines:
            text = "\n".join(lines)
            left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=face)
            tag_w, tag_h = right - left + 4, bottom - top + 4
            x = max(0.0, min(x1, width - tag_w))  # inside the picture
            y = y1 - tag_h if y1 >= tag_h else y1
            draw.rectangle([x, y, x + tag_w, y + tag_h], fill=colour)
            draw.multiline_text((x + 2 - left, y + 2 - top), text, fill=WHITE, font=face)
    if caption:
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=face)
        draw.rectangle([0, 0, right - left + 6, bottom - top + 6], fill=SHADE)
        draw.text((3 - left, 3 - top), caption, fill=WHITE, font=face)
    return np.asarray(image)


def keyframe_grid(images: list[np.ndarray], title: str, columns: int = 4) -> Image.Image:
    """Equally sized pictures in rows of `columns`, under a title."""
    rows = [images[i : i + columns] for i in range(0, len(images), columns)]
    return draw_text_grid(rows, [""] * len(rows), title)


def save_gif(frames: list[np.ndarray], path: str, fps: float) -> None:
    """An animated GIF of equally sized uint8 frames, looping."""
    pictures = [Image.fromarray(frame) for frame in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=max(20, int(1000 / fps)), loop=0)
