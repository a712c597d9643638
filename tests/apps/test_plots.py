"""Pillow-only figures."""

from __future__ import annotations

import numpy as np
from PIL import Image

from videomae.apps.plots import draw_text_grid, line_plot, nice_ticks


def test_line_plot_writes_a_png(tmp_path):
    path = tmp_path / "curve.png"
    line_plot(
        {"a": [3, 2, 1.5, None, 1.2], "b": [2.5, 2.4, 2.2, 2.1, 2.0]},
        str(path),
        title="t",
        xlabel="step",
        ylabel="loss",
        size=(320, 200),
        smooth=2,
    )
    image = Image.open(path)
    assert image.size == (320, 200)
    colours = {tuple(c) for c in np.asarray(image.convert("RGB")).reshape(-1, 3).tolist()}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours  # both curves are drawn


def test_ticks_are_round_and_cover_the_range():
    ticks = nice_ticks(0.93, 1.14)
    assert ticks[0] >= 0.93 and ticks[-1] <= 1.14 and len(ticks) >= 3
    assert all(abs(t * 100 - round(t * 100)) < 1e-6 for t in ticks)


def test_grid_has_one_cell_per_frame():
    cells = [[np.full((10, 12, 3), 100 * r, dtype=np.uint8) for _ in range(3)] for r in range(2)]
    image = draw_text_grid(cells, ["one", "two"], title="grid")
    assert image.width > 3 * 12 and image.height > 2 * 10
