"""The moving-digit videos of the demo: deterministic, balanced, and the motion is the class."""

from __future__ import annotations

import torch

from videomae.demo.digits import CLASS_NAMES, DigitsConfig, glyph_bank, make_digit_clips

CFG = DigitsConfig(glyphs_per_digit=2, noise=0.0)


def _ink_centre(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) -> (T, 2) brightness-weighted (x, y) centre of each frame."""
    weight = frames.float().mean(-1)
    weight = (weight - weight.amin(dim=(1, 2), keepdim=True)).clamp_min(0)  # (T, H, W)
    ys, xs = torch.meshgrid(torch.arange(weight.shape[1]), torch.arange(weight.shape[2]), indexing="ij")
    total = weight.sum(dim=(1, 2))
    return torch.stack([(weight * xs).sum(dim=(1, 2)) / total, (weight * ys).sum(dim=(1, 2)) / total], dim=1)


def test_clips_are_deterministic_and_balanced():
    bank = glyph_bank(CFG, 0)
    first = make_digit_clips(32, CFG, 0, glyphs=bank)
    again = make_digit_clips(32, CFG, 0, glyphs=bank)
    other = make_digit_clips(32, CFG, 0, stream=1, glyphs=bank)
    assert first.frames.shape == (32, 8, 32, 32, 3) and first.frames.dtype == torch.uint8
    assert torch.equal(first.frames, again.frames) and not torch.equal(first.frames, other.frames)
    assert torch.bincount(first.labels, minlength=len(CLASS_NAMES)).tolist() == [4] * len(CLASS_NAMES)


def test_translation_classes_move_the_digit_their_way():
    clips = make_digit_clips(64, CFG, 0)
    expected = {"move left": (0, -1), "move right": (0, 1), "move up": (1, -1), "move down": (1, 1)}
    for name, (axis, sign) in expected.items():
        for index in torch.nonzero(clips.labels == CLASS_NAMES.index(name)).flatten()[:3]:
            centre = _ink_centre(clips.frames[index])
            assert sign * (centre[-1, axis] - centre[0, axis]) > 2, name
