"""Transforms against the official formulas: multi-scale crop, evaluation views, Mixup/CutMix, RandAugment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videomae.data import MixupCutmix
from videomae.data.transforms import (
    RandAugmentSpec,
    apply_seeded,
    finetune_train_transform,
    multiscale_crop_box,
    multiview_clip,
    normalize,
    resize_short_side,
    val_clip,
)
from videomae.errors import DataError


def official_crop_candidates(image_w, image_h, input_size, scales):
    """GroupMultiScaleCrop: all (w, h, w_off, h_off) the official code can choose (max_distort 1, 13 offsets)."""
    base = min(image_w, image_h)
    sizes = [int(base * x) for x in scales]
    crop_h = [input_size if abs(x - input_size) < 3 else x for x in sizes]
    crop_w = [input_size if abs(x - input_size) < 3 else x for x in sizes]
    out = set()
    for i, h in enumerate(crop_h):
        for j, w in enumerate(crop_w):
            if abs(i - j) <= 1:
                ws, hs = (image_w - w) // 4, (image_h - h) // 4
                for a, b in [
                    (0, 0),
                    (4, 0),
                    (0, 4),
                    (4, 4),
                    (2, 2),
                    (0, 2),
                    (4, 2),
                    (2, 4),
                    (2, 0),
                    (1, 1),
                    (3, 1),
                    (1, 3),
                    (3, 3),
                ]:
                    out.add((w, h, a * ws, b * hs))
    return out


@pytest.mark.parametrize("height,width", [(240, 320), (320, 240), (256, 256)])
def test_multiscale_crop_draws_only_official_boxes_and_all_of_them(height, width):
    scales = (1, 0.875, 0.75, 0.66)
    allowed = official_crop_candidates(width, height, 224, scales)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(3000):
        top, left, h, w = multiscale_crop_box(height, width, 224, scales, rng)
        seen.add((w, h, left, top))
    assert seen == allowed


def test_resize_short_side_follows_official_int_rounding():
    video = torch.zeros(2, 3, 50, 70, dtype=torch.uint8)
    assert resize_short_side(video, 32).shape[-2:] == (32, int(32 * 70 / 50))
    assert resize_short_side(video.transpose(-1, -2), 32).shape[-2:] == (int(32 * 70 / 50), 32)


def test_test_crops_cover_left_centre_right():
    frames = np.zeros((2, 32, 80, 3), dtype=np.uint8)
    frames[..., :, :, 0] = np.arange(80, dtype=np.uint8)[None, None, :]  # red = column
    starts = []
    for crop in range(3):
        clip = multiview_clip(frames, 32, crop, 3)  # (3, T, 32, 32)
        first_column_red = clip[0, 0, 0, 0] * 0.229 + 0.485
        starts.append(round(first_column_red.item() * 255))
    assert starts == [int(c * (80 - 32) / 2) for c in range(3)]


def test_val_clip_centre_crop_offset():
    frames = np.zeros((1, 32, 51, 3), dtype=np.uint8)
    frames[..., 0] = np.arange(51, dtype=np.uint8)[None, None, :]
    clip = val_clip(frames, 32, 32)
    assert round((clip[0, 0, 0, 0] * 0.229 + 0.485).item() * 255) == round((51 - 32) / 2)


def test_normalize_layout():
    video = torch.full((4, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize(video)
    assert out.shape == (3, 4, 2, 2)
    assert out[1, 0, 0, 0].item() == pytest.approx((1 - 0.456) / 0.224)


def test_rand_augment_spec_mapping():
    spec = RandAugmentSpec.parse("rand-m7-n4-mstd0.5-inc1")
    assert (spec.magnitude, spec.num_ops, spec.magnitude_std) == (7, 4, 0.5)
    assert spec.torchvision_magnitude() == 21
    with pytest.raises(DataError):
        RandAugmentSpec.parse("auto-m7")


def test_finetune_transform_is_seeded_and_same_for_all_frames():
    frames = np.repeat(np.random.default_rng(0).integers(0, 255, (1, 40, 48, 3), dtype=np.uint8), 4, axis=0)
    transform = finetune_train_transform(32, "rand-m7-n4-mstd0.5-inc1", flip=True, reprob=0.0)
    state = torch.get_rng_state()
    a, b = apply_seeded(transform, frames, 11), apply_seeded(transform, frames, 11)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert torch.equal(a, b) and a.shape == (3, 4, 32, 32)
    assert torch.equal(a[:, 0], a[:, 3])  # identical frames stay identical: one draw per clip


def official_mixup_targets(labels, num_classes, lam, smoothing):
    off = smoothing / num_classes
    on = 1 - smoothing + off
    y1 = torch.full((len(labels), num_classes), off).scatter_(1, labels.view(-1, 1), on)
    y2 = torch.full((len(labels), num_classes), off).scatter_(1, labels.flip(0).view(-1, 1), on)
    return y1 * lam + y2 * (1 - lam)


def test_mixup_only_blends_with_reversed_batch():
    video = torch.rand(4, 3, 2, 8, 8)
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets = MixupCutmix(5, mixup_alpha=0.8, cutmix_alpha=0.0)(video, labels, np.random.default_rng(0))
    lam = ((mixed - video.flip(0)) / (video - video.flip(0)))[0].mean().item()
    torch.testing.assert_close(mixed, video * lam + video.flip(0) * (1 - lam))
    torch.testing.assert_close(targets, official_mixup_targets(labels, 5, lam, 0.1))
    assert targets.sum(1).allclose(torch.ones(4))


def test_cutmix_box_shared_by_frames_and_lambda_is_area():
    video = torch.zeros(2, 3, 4, 16, 16)
    video[1] = 1.0
    mixed, targets = MixupCutmix(3, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)(
        video, torch.tensor([0, 2]), np.random.default_rng(3)
    )
    pasted = mixed[0, 0]  # (T, H, W): 1 inside the box taken from the partner
    assert all(torch.equal(pasted[0], pasted[t]) for t in range(4))
    lam = 1 - pasted[0].mean().item()
    torch.testing.assert_close(targets[0], torch.tensor([lam, 0.0, 1 - lam]))


def test_mixup_is_deterministic_from_generator():
    video, labels = torch.rand(4, 3, 2, 8, 8), torch.tensor([0, 1, 0, 1])
    mix = MixupCutmix(2)
    a = mix(video, labels, np.random.default_rng(9))
    b = mix(video, labels, np.random.default_rng(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
