"""Clip transforms: the official pretraining multi-scale crop, fine-tuning augmentation, evaluation views,
and batch-level Mixup/CutMix.

Clip transforms take uint8 frames (T, H, W, 3) as decoded. The `*_pixels` transforms (pretraining, validation
and test views) return uint8 (3, T, H, W): the data loader moves pixels, four times fewer bytes than floats through
the workers, pinned memory and the copy to the device, where `normalize_clips` maps them to the ImageNet-normalised
float32 the model takes. The `*_clip` transforms return that float32 directly (the apps; fine-tuning training
clips, whose augmentation ends in normalised space). All random choices come from a generator made from (seed,
epoch, index, view).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

from videomae.constants import IMAGENET_MEAN, IMAGENET_STD
from videomae.errors import DataError


def to_tchw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (T, 3, H, W)."""
    return torch.as_tensor(frames).permute(0, 3, 1, 2)


@functools.cache
def _pixel_statistics(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std of uint8 pixels, (3, 1, 1, 1) each, made once per device (no copy per batch)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1, 1) * 255
    return mean, std


def normalize_clips(video: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (..., 3, T, H, W) -> ImageNet-normalised float32 on the same device; a float clip is taken to
    be normalised already and returned as it is."""
    if video.dtype != torch.uint8:
        return video
    mean, std = _pixel_statistics(video.device)
    return (video.float() - mean) / std


def normalize(video: torch.Tensor) -> torch.Tensor:
    """uint8 frames (T, 3, H, W) -> ImageNet-normalised float32 (3, T, H, W)."""
    return normalize_clips(video.permute(1, 0, 2, 3)).contiguous()


# ---- pretraining --------------------------------------------------------------------------------------------


def multiscale_crop_box(
    height: int, width: int, input_size: int, scales: tuple[float, ...], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """Official `GroupMultiScaleCrop` (max_distort 1, fix_crop, more_fix_crop): (top, left, crop_h, crop_w).

    Crop sides are `int(short_side·scale)`, snapped to `input_size` within 3 pixels; width and height scales
    may differ by one step; the offset is one of 13 fixed positions on a 4x4 grid of steps.
    """
    sides = [int(min(height, width) * s) for s in scales]
    sides = [input_size if abs(side - input_size) < 3 else side for side in sides]
    pairs = [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1]
    crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
    w_step, h_step = (width - crop_w) // 4, (height - crop_h) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
    x, y = grid[int(rng.integers(len(grid)))]
    return y * h_step, x * w_step, crop_h, crop_w


def pretrain_pixels(
    frames: np.ndarray | torch.Tensor, input_size: int, scales: tuple[float, ...], rng: np.random.Generator
) -> torch.Tensor:
    """Multi-scale crop, bilinear resize to `input_size` (antialiased, to uint8 like PIL) -> uint8 (3, T, S, S)."""
    video = to_tchw(frames)  # (T, 3, H, W)
    top, left, crop_h, crop_w = multiscale_crop_box(video.shape[-2], video.shape[-1], input_size, scales, rng)
    video = video[..., top : top + crop_h, left : left + crop_w]
    video = TF.resize(video, [input_size, input_size], InterpolationMode.BILINEAR, antialias=True)  # (T,3,S,S)
    return video.permute(1, 0, 2, 3).contiguous()


# ---- evaluation -----------------------------------------------------------------------------------------------


def resize_short_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """Official `Resize(size)`: short side -> size, long side `int(size·long/short)`, bilinear (cv2-like)."""
    height, width = video.shape[-2:]
    if width < height:
        new_h, new_w = int(size * height / width), size
    else:
        new_h, new_w = size, int(size * width / height)
    if (new_h, new_w) == (height, width):
        return video
    return TF.resize(video, [new_h, new_w], InterpolationMode.BILINEAR, antialias=False)


def val_pixels(frames: np.ndarray | torch.Tensor, short_side_size: int, input_size: int) -> torch.Tensor:
    """Validation: short-side resize, centre crop (offset `round((W - crop)/2)`) -> uint8 (3, T, S, S)."""
    video = resize_short_side(to_tchw(frames), short_side_size)
    return TF.center_crop(video, [input_size, input_size]).permute(1, 0, 2, 3).contiguous()


def val_clip(frames: np.ndarray | torch.Tensor, short_side_size: int, input_size: int) -> torch.Tensor:
    """`val_pixels`, normalised: float32 (3, T, S, S)."""
    return normalize_clips(val_pixels(frames, short_side_size, input_size))


def multiview_pixels(
    frames: np.ndarray | torch.Tensor, short_side_size: int, crop: int, num_crops: int
) -> torch.Tensor:
    """Test: short-side resize, then square `crop` of `num_crops` along the long side -> uint8 (3, T, s, s).

    Crop `c` starts at `int(c·(long - short)/(num_crops - 1))`; a single crop is centred (the official code
    divides by zero there).
    """
    video = resize_short_side(to_tchw(frames), short_side_size)
    height, width = video.shape[-2:]
    free = max(height, width) - short_side_size
    start = int(crop * free / (num_crops - 1)) if num_crops > 1 else free // 2
    if height >= width:
        video = video[..., start : start + short_side_size, :]
    else:
        video = video[..., start : start + short_side_size]
    return video.permute(1, 0, 2, 3).contiguous()


def multiview_clip(frames: np.ndarray | torch.Tensor, short_side_size: int, crop: int, num_crops: int) -> torch.Tensor:
    """`multiview_pixels`, normalised: float32 (3, T, s, s)."""
    return normalize_clips(multiview_pixels(frames, short_side_size, crop, num_crops))


# ---- fine-tuning training ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RandAugmentSpec:
    """A timm-style `rand-m{M}-n{N}[-mstd{S}][-inc{0,1}]` string, parsed."""

    magnitude: int
    num_ops: int
    magnitude_std: float = 0.0

    @classmethod
    def parse(cls, text: str) -> RandAugmentSpec:
        """Parse e.g. "rand-m7-n4-mstd0.5-inc1"; raises `DataError` on anything else."""
        parts = text.split("-")
        if parts[0] != "rand":
            raise DataError(f"rand_augment must look like 'rand-m7-n4-mstd0.5-inc1', got {text!r}")
        values = {"m": 9.0, "n": 2.0, "mstd": 0.0}
        for part in parts[1:]:
            match = re.fullmatch(r"(mstd|inc|m|n)([0-9.]+)", part)
            if not match:
                raise DataError(f"rand_augment: unknown part {part!r} in {text!r}")
            values[match.group(1)] = float(match.group(2))
        return cls(int(values["m"]), int(values["n"]), values["mstd"])

    def torchvision_magnitude(self, bins: int = 31) -> int:
        """timm magnitude M of 10 -> torchvision bin: the same fraction of each op's range."""
        return round(self.magnitude / 10 * (bins - 1))


def finetune_train_transform(input_size: int, rand_augment: str | None, flip: bool, reprob: float) -> v2.Compose:
    """Official `_aug_frame` with torchvision.transforms.v2 on a `tv_tensors.Video` (one draw for all frames).

    RandAugment (uint8, bilinear: torchvision has no bicubic for tensors; grey fill) -> [0, 1] float -> ImageNet
    normalise -> random-resized crop (scale 0.08-1, ratio 3/4-4/3, bilinear without antialias as `F.interpolate`)
    -> flip -> random erasing (one box for all frames, N(0, 1) noise). docs/data.md maps this to timm's RandAugment.
    """
    steps: list[v2.Transform] = []
    if rand_augment:
        spec = RandAugmentSpec.parse(rand_augment)
        steps.append(
            v2.RandAugment(
                num_ops=spec.num_ops,
                magnitude=spec.torchvision_magnitude(),
                num_magnitude_bins=31,
                interpolation=InterpolationMode.BILINEAR,
                fill=128,
            )
        )
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        v2.RandomResizedCrop(
            input_size,
            scale=(0.08, 1.0),
            ratio=(3 / 4, 4 / 3),
            interpolation=InterpolationMode.BILINEAR,
            antialias=False,
        ),
    ]
    if flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if reprob > 0:
        steps.append(v2.RandomErasing(p=reprob, scale=(0.02, 1 / 3), ratio=(0.3, 1 / 0.3), value="random"))
    return v2.Compose(steps)


def apply_seeded(transform: v2.Transform, frames: np.ndarray | torch.Tensor, seed: int) -> torch.Tensor:
    """Run a torchvision transform with its random draws seeded, without touching the caller's global RNG.

    Returns:
        float32 (3, T, H, W).
    """
    video = tv_tensors.Video(to_tchw(frames))  # (T, 3, H, W)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = transform(video)  # (T, 3, S, S), already normalised
    return out.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()  # (3, T, S, S)


# ---- batch level ----------------------------------------------------------------------------------------------


class MixupCutmix:
    """timm `Mixup` in batch mode with the official settings: one λ per batch, partner = reversed batch.

    With both alphas > 0, CutMix is chosen with probability `switch_prob`, else Mixup. The CutMix box is shared
    by all frames and λ is corrected to the box's true area. Label smoothing is folded into the soft targets.

    Args:
        num_classes: width of the soft targets.
        mixup_alpha: Beta(α, α) for Mixup; 0 disables Mixup.
        cutmix_alpha: Beta(α, α) for CutMix; 0 disables CutMix.
        label_smoothing: smoothing folded into the targets.
        switch_prob: probability of CutMix when both are enabled.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        label_smoothing: float = 0.1,
        switch_prob: float = 0.5,
    ):
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.label_smoothing, self.switch_prob = label_smoothing, switch_prob

    def soft_targets(self, labels: torch.Tensor, lam: float) -> torch.Tensor:
        """(B,) long -> (B, C): smoothed one-hot mixed with the reversed batch's."""
        off = self.label_smoothing / self.num_classes
        on = 1.0 - self.label_smoothing + off
        one_hot = torch.full((labels.shape[0], self.num_classes), off, device=labels.device)
        one_hot.scatter_(1, labels.view(-1, 1), on)  # (B, C)
        return one_hot * lam + one_hot.flip(0) * (1.0 - lam)

    def _cutmix_box(self, height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
        top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        return int(top), int(bottom), int(left), int(right)

    def __call__(
        self, video: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix a batch.

        Args:
            video: (B, 3, T, H, W) float.
            labels: (B,) long class indices.
            rng: source of the draws (λ, Mixup/CutMix choice, box), on the host.

        Returns:
            The mixed video (B, 3, T, H, W) and soft targets (B, C).
        """
        if video.shape[0] % 2:
            raise DataError(f"Mixup/CutMix needs an even batch size, got {video.shape[0]}")
        if self.mixup_alpha <= 0 and self.cutmix_alpha <= 0:
            return video, self.soft_targets(labels, 1.0)
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or rng.random() < self.switch_prob)
        lam = float(rng.beta(*(2 * [self.cutmix_alpha if use_cutmix else self.mixup_alpha])))
        if use_cutmix:
            height, width = video.shape[-2:]
            top, bottom, left, right = self._cutmix_box(height, width, lam, rng)
            video = video.clone()
            video[..., top:bottom, left:right] = video.flip(0)[..., top:bottom, left:right]
            lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        else:
            video = video * lam + video.flip(0) * (1.0 - lam)
        return video, self.soft_targets(labels, lam)
