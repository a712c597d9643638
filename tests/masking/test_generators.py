"""Mask generators against the official patterns and counts (reference §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videomae.errors import ConfigError
from videomae.masking import frame_mask, kept_indices, make_mask, no_mask, random_mask, running_cell_mask, tube_mask


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def official_running_cell_maps(grid, ratio):
    """Transcription of the documented official RunningCellMaskingGenerator (reference §3.2)."""
    t, h, w = grid
    m = int(4 * ratio)
    queue = np.array([1] * m + [0] * (4 - m))
    maps = []
    for start in range(4):
        pointer, frames = start, []
        for _ in range(t):
            pointer = (pointer + 1) % 4  # incremented before each frame
            cell = queue[(np.arange(4) + pointer) % 4].reshape(2, 2)
            frames.append(np.tile(cell, (h // 2, w // 2)))
        maps.append(np.stack(frames).reshape(-1))
    return np.stack(maps).astype(bool)


@pytest.mark.parametrize(
    "grid,ratio,masked_per_frame", [((8, 14, 14), 0.9, 176), ((8, 16, 16), 0.9, 230), ((2, 4, 4), 0.75, 12)]
)
def test_tube_mask_counts_and_tubes(grid, ratio, masked_per_frame):
    t, h, w = grid
    mask = tube_mask(3, grid, ratio, generator=gen())
    assert mask.shape == (3, t * h * w) and mask.dtype == torch.bool
    frames = mask.view(3, t, h * w)
    assert (frames.sum(-1) == masked_per_frame).all()  # official int(ratio·H'W') per frame
    assert (frames == frames[:, :1]).all()  # the same spatial mask at every time step
    assert not torch.equal(frames[0, 0], frames[1, 0])  # samples differ


def test_vit_b_tube_leaves_160_visible_tokens():
    assert int((~tube_mask(1, (8, 14, 14), 0.9, generator=gen()))[0].sum()) == 160


def test_masks_are_seedable():
    for kind, ratio in [("tube", 0.9), ("random", 0.9), ("frame", 0.5), ("running_cell", 0.5)]:
        a = make_mask(kind, 4, (4, 6, 6), ratio, generator=gen(7))
        b = make_mask(kind, 4, (4, 6, 6), ratio, generator=gen(7))
        assert torch.equal(a, b), kind


def test_tube_mask_is_uniform_over_positions():
    hits = tube_mask(4000, (1, 4, 4), 0.5, generator=gen()).float().mean(0)
    assert torch.allclose(hits, torch.full_like(hits, 0.5), atol=0.04)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_running_cell_uses_the_four_official_maps(ratio):
    grid = (8, 4, 6)
    official = torch.from_numpy(official_running_cell_maps(grid, ratio))
    mask = running_cell_mask(64, grid, ratio, generator=gen())
    matches = (mask[:, None, :] == official[None]).all(-1)  # (B, 4): which official map each sample is
    assert (matches.sum(-1) == 1).all()
    assert set(matches.float().argmax(-1).tolist()) == {0, 1, 2, 3}  # all four start pointers occur
    frames = mask.view(64, 8, 24)
    assert (frames.sum(-1) == int(ratio * 24)).all()  # exactly `ratio` of every frame dropped


def test_running_cell_half_patterns_cycle_with_period_four():
    # Reference §3.2: pointer q gives [[1,1],[0,0]], [[1,0],[0,1]], [[0,0],[1,1]], [[0,1],[1,0]].
    patterns = [[[1, 1], [0, 0]], [[1, 0], [0, 1]], [[0, 0], [1, 1]], [[0, 1], [1, 0]]]
    mask = running_cell_mask(16, (8, 2, 2), 0.5, generator=gen()).view(16, 8, 2, 2).int()
    for sample in mask:
        first = patterns.index(sample[0].tolist())
        for t in range(8):
            assert sample[t].tolist() == patterns[(first + t) % 4]


def test_running_cell_rejects_odd_grids_and_unsupported_ratios():
    with pytest.raises(ConfigError, match="even token grid"):
        running_cell_mask(1, (8, 7, 7), 0.5)
    with pytest.raises(ConfigError, match="0.25, 0.5, 0.75"):
        running_cell_mask(1, (8, 14, 14), 0.9)


def test_random_and_frame_masks():
    mask = random_mask(5, (4, 5, 5), 0.9, generator=gen())
    assert (mask.sum(-1) == 90).all()
    frames = frame_mask(5, (4, 5, 5), 0.5, generator=gen()).view(5, 4, 25)
    assert (frames.all(-1) | ~frames.any(-1)).all()  # whole time slots
    assert (frames.all(-1).sum(-1) == 2).all()


def test_none_mask_and_errors():
    assert not no_mask(2, (2, 2, 2)).any()
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        tube_mask(1, (2, 2, 2), 1.0)
    with pytest.raises(ConfigError, match="unknown mask type"):
        make_mask("blocks", 1, (2, 2, 2), 0.5)
    assert torch.equal(
        make_mask("run_cell", 1, (2, 2, 2), 0.5, generator=gen(3)),
        running_cell_mask(1, (2, 2, 2), 0.5, generator=gen(3)),
    )


def test_masks_follow_the_generator_device():
    mask = make_mask("tube", 2, (2, 4, 4), 0.5, device="meta")
    assert mask.device.type == "meta"


def test_kept_indices_are_ascending_positions_of_false():
    mask = torch.tensor([[True, False, True, False], [False, True, True, False]])
    assert kept_indices(mask).tolist() == [[1, 3], [0, 3]]
