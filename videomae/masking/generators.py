"""Token masks for dual masking.

Every generator returns a boolean tensor of shape (B, N), N = T'·H'·W' tokens in token order (t, h, w),
with True = masked. For the encoder mask "masked" means hidden from the encoder; for the decoder mask it
means "not reconstructed" (the official semantics, reference §3). Every sample of a batch has exactly the
same number of masked tokens, so the model can gather tokens into dense (B, n, D) tensors.

Counts follow the official quantisation: tube masks `int(ratio·H'W')` tokens per frame, random masks
`int(ratio·N)` tokens, frame masks `int(ratio·T')` whole time slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from videomae.errors import ConfigError

Grid = tuple[int, int, int]  # (T', H', W'): tokens along time, height and width
MaskType = Literal["tube", "random", "frame", "running_cell", "none"]

RUNNING_CELL_RATIOS = (0.25, 0.5, 0.75)


def token_grid(num_frames: int, size: tuple[int, int], tubelet_size: int, patch_size: int) -> Grid:
    """The (T', H', W') token grid of a clip; raises if the clip does not divide into tubelets."""
    height, width = size
    if num_frames % tubelet_size:
        raise ConfigError(
            f"num_frames={num_frames} is not divisible by tubelet_size={tubelet_size}; "
            f"use a clip length that is a multiple of {tubelet_size}"
        )
    if height % patch_size or width % patch_size:
        raise ConfigError(
            f"frame size {height}x{width} is not divisible by patch_size={patch_size}; "
            f"resize or crop to a multiple of {patch_size}"
        )
    return num_frames // tubelet_size, height // patch_size, width // patch_size


def _check_ratio(ratio: float, name: str) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"{name} mask ratio must be in [0, 1), got {ratio}")


def _device_of(generator: torch.Generator | None, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    return generator.device if generator is not None else torch.device("cpu")


def _choose(batch: int, population: int, count: int, generator, device) -> torch.Tensor:
    """(batch, population) bool with exactly `count` True entries per row, uniformly at random."""
    noise = torch.rand(batch, population, generator=generator, device=device)  # (B, P)
    chosen = noise.argsort(dim=1)[:, :count]  # (B, count)
    return torch.zeros(batch, population, dtype=torch.bool, device=device).scatter_(1, chosen, True)


def tube_mask(batch: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """One random spatial mask per sample, repeated at every time step (VideoMAE's tube mask)."""
    _check_ratio(ratio, "tube")
    t, h, w = grid
    device = _device_of(generator, device)
    spatial = _choose(batch, h * w, int(ratio * h * w), generator, device)  # (B, H'W')
    return spatial.unsqueeze(1).expand(batch, t, h * w).reshape(batch, t * h * w)  # (B, N)


def random_mask(batch: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """`int(ratio·N)` tokens masked uniformly over space and time (MAE-ST style)."""
    _check_ratio(ratio, "random")
    n = grid[0] * grid[1] * grid[2]
    return _choose(batch, n, int(ratio * n), generator, _device_of(generator, device))


def frame_mask(batch: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """`int(ratio·T')` whole time slots masked."""
    _check_ratio(ratio, "frame")
    t, h, w = grid
    device = _device_of(generator, device)
    slots = _choose(batch, t, int(ratio * t), generator, device)  # (B, T')
    return slots.unsqueeze(2).expand(batch, t, h * w).reshape(batch, t * h * w)  # (B, N)


def _running_cell_maps(grid: Grid, ratio: float, device) -> torch.Tensor:
    """The 4 official running-cell maps, one per start pointer: (4, N) bool, True = not reconstructed."""
    t, h, w = grid
    masked_per_cell = round(4 * ratio)
    queue = torch.tensor([1] * masked_per_cell + [0] * (4 - masked_per_cell), dtype=torch.bool, device=device)
    start = torch.arange(4, device=device).view(4, 1)  # (4, 1)
    frame = torch.arange(t, device=device).view(1, t)  # (1, T')
    pointer = (start + frame + 1) % 4  # (4, T'): the official code advances the pointer before each frame
    cells = queue[(torch.arange(4, device=device) + pointer.unsqueeze(-1)) % 4].view(4, t, 2, 2)  # (4, T', 2, 2)
    tiled = cells.repeat(1, 1, h // 2, w // 2)  # (4, T', H', W'): element (h, w) = cell[h % 2, w % 2]
    return tiled.reshape(4, t * h * w)


def running_cell_mask(batch: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """VideoMAE V2's running-cell decoder mask: a 2x2 cell pattern that shifts every frame.

    Each sample picks one of the 4 start pointers uniformly; every frame then drops exactly `ratio` of
    its tokens, and each spatial position is reconstructed in a regular rhythm over time.
    """
    if not any(abs(ratio - r) < 1e-9 for r in RUNNING_CELL_RATIOS):
        raise ConfigError(
            f"running_cell mask ratio must be one of {RUNNING_CELL_RATIOS} (a 2x2 cell keeps 1, 2 "
            f"or 3 of its 4 tokens), got {ratio}"
        )
    t, h, w = grid
    if h % 2 or w % 2:
        raise ConfigError(
            f"running_cell mask needs an even token grid, got {h}x{w} tokens per frame; "
            f"use an input size that is a multiple of 2·patch_size"
        )
    device = _device_of(generator, device)
    start = torch.randint(0, 4, (batch,), generator=generator, device=device)  # (B,)
    return _running_cell_maps(grid, ratio, device)[start]  # (B, N)


def no_mask(batch: int, grid: Grid, ratio: float = 0.0, *, generator=None, device=None) -> torch.Tensor:
    """Nothing masked."""
    if ratio:
        raise ConfigError(f"mask type 'none' takes no ratio, got {ratio}")
    n = grid[0] * grid[1] * grid[2]
    return torch.zeros(batch, n, dtype=torch.bool, device=_device_of(generator, device))


MASK_GENERATORS: dict[str, Callable[..., torch.Tensor]] = {
    "tube": tube_mask,
    "random": random_mask,
    "frame": frame_mask,
    "running_cell": running_cell_mask,
    "none": no_mask,
}


def make_mask(kind: str, batch: int, grid: Grid, ratio: float, *, generator=None, device=None) -> torch.Tensor:
    """Dispatch by name: one of `MASK_GENERATORS` ("run_cell" is accepted as the official alias)."""
    kind = "running_cell" if kind == "run_cell" else kind
    if kind not in MASK_GENERATORS:
        raise ConfigError(f"unknown mask type {kind!r}; choose one of {sorted(MASK_GENERATORS)}")
    return MASK_GENERATORS[kind](batch, grid, ratio, generator=generator, device=device)


@dataclass(frozen=True)
class MaskSpec:
    """The two masks of dual masking, named as in `DataConfig` (and the recipes, the export, the commands).

    `decoder_mask_ratio` 0 means VideoMAE v1: the decoder reconstructs exactly the tokens hidden from the encoder.
    """

    mask_type: MaskType = "tube"
    mask_ratio: float = 0.9
    decoder_mask_type: MaskType = "running_cell"
    decoder_mask_ratio: float = 0.5

    def sample(self, batch: int, grid: Grid, *, generator=None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder mask (True = hidden) and decoder mask (True = not reconstructed), (B, N) each, drawn in that
        order from `generator`: the one implementation the datasets, the demo and `visualize` share."""
        encoder = make_mask(self.mask_type, batch, grid, self.mask_ratio, generator=generator, device=device)
        if self.decoder_mask_ratio == 0:
            return encoder, ~encoder
        decoder = make_mask(
            self.decoder_mask_type, batch, grid, self.decoder_mask_ratio, generator=generator, device=device
        )
        return encoder, decoder


def kept_indices(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Ascending token indices where `mask` is False: (B, N) bool -> (B, n) long.

    Raises if samples keep different numbers of tokens (the model needs dense per-sample token sets).
    """
    if mask.dtype != torch.bool or mask.dim() != 2:
        raise ConfigError(f"{name} must be a (B, N) bool tensor, got {tuple(mask.shape)} {mask.dtype}")
    kept = (~mask).sum(dim=1)  # (B,)
    if mask.shape[0] and bool((kept != kept[0]).any()):
        raise ConfigError(
            f"{name} keeps a different number of tokens per sample ({kept.tolist()}); "
            f"every sample must keep the same count"
        )
    order = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # (B, N): kept tokens first, ascending
    return order[:, : int(kept[0]) if mask.shape[0] else 0]


def mask_indices(encoder_mask: torch.Tensor, decoder_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The static-shape form of a pair of masks (B, N), as the pretraining model and loss take it.

    `visible_idx` (B, N_vis): tokens the encoder sees; `predicted_idx` (B, N_dec): tokens the decoder reconstructs
    (`decoder_mask` None = exactly the hidden ones); `loss_weight` (B, N_dec) bool: reconstructed tokens that were
    hidden from the encoder. Finding the counts reads the masks on the host, so the data loader computes these on
    the CPU and the training step never waits for the device.
    """
    predicted_idx = kept_indices(~encoder_mask if decoder_mask is None else decoder_mask, "decoder_mask")
    return {
        "visible_idx": kept_indices(encoder_mask, "encoder_mask"),
        "predicted_idx": predicted_idx,
        "loss_weight": torch.gather(encoder_mask, 1, predicted_idx),
    }
