"""Per-patch un-normalization and token painting behind `videomae visualize`."""

from __future__ import annotations

import torch

from videomae.apps.visualize import paint_tokens, token_mask_pixels, unnormalize_patches
from videomae.masking import kept_indices, make_mask
from videomae.training.objective import pixel_targets, unnormalize


def test_normalized_targets_map_back_to_the_original_pixels():
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 16, 16)  # normalized clip
    pixels = unnormalize(video).clamp(0, 1)
    idx = kept_indices(make_mask("random", 2, (2, 2, 2), 0.5, generator=torch.Generator().manual_seed(1)))
    targets = pixel_targets(pixels, 2, 8, token_idx=idx, mean=(0, 0, 0), std=(1, 1, 1))  # per-patch normalized
    restored = unnormalize_patches(targets, pixels, 2, 8, idx)
    raw = pixel_targets(pixels, 2, 8, normalize=False, token_idx=idx, mean=(0, 0, 0), std=(1, 1, 1))
    torch.testing.assert_close(restored, raw, atol=1e-4, rtol=0)


def test_painting_all_tokens_rebuilds_the_clip():
    clip = torch.rand(1, 3, 4, 16, 16)
    all_tokens = torch.arange(8).view(1, 8)
    canvas = torch.zeros_like(clip)
    paint_tokens(canvas, pixel_targets(clip, 2, 8, normalize=False, mean=(0, 0, 0), std=(1, 1, 1)), all_tokens, 2, 8)
    torch.testing.assert_close(canvas, clip)


def test_token_mask_covers_exactly_its_tubelets():
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[0, 5] = True  # time slot 1, row 0, column 1
    pixels = token_mask_pixels(mask, torch.zeros(1, 3, 4, 16, 16), 2, 8)
    assert int(pixels.sum()) == 3 * 2 * 8 * 8
    assert bool(pixels[0, :, 2:4, 0:8, 8:16].all())
