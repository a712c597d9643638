"""Reconstructions of a pretraining model, as pictures: what the encoder saw, what the decoder rebuilt.

Rows of the grid (one column per frame):
    original    the clip as the model receives it (after resize and crop)
    visible     the encoder's input: tokens hidden by the encoder mask are grey
    decoded     the tokens the decoder reconstructs (decoder mask); the others are grey
    recon       visible tokens as given, reconstructed tokens from the predictions, the rest dark
    error       |recon - original| on reconstructed hidden tokens, amplified

The model predicts per-patch *normalized* pixels (reference §3.4). Each predicted token is mapped back with
that token's own statistics in the original clip, per colour channel:
    pixels = prediction · (std_patch + eps) + mean_patch   (unbiased std, as the target definition)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from videomae.apps.plots import draw_text_grid
from videomae.masking import MaskSpec, mask_indices
from videomae.models.vit import tubelet_view
from videomae.seeding import torch_generator
from videomae.training.objective import indexed_pretraining_loss, pixel_targets, unnormalize

ROW_NAMES = ("original", "visible", "decoded", "recon", "error")
HIDDEN_GREY = 0.5  # fill of tokens the encoder did not see
NOT_PREDICTED = 0.12  # fill of tokens nobody reconstructed
ERROR_GAIN = 3.0  # errors are small; amplify them to be visible
TARGET_EPS = 1e-6  # the eps of the normalized targets


@dataclass
class Reconstruction:
    """One clip's panels, each float (T, H, W, 3) in [0, 1], and the loss on the reconstructed hidden tokens."""

    original: np.ndarray
    visible: np.ndarray
    decoded: np.ndarray
    recon: np.ndarray
    error: np.ndarray
    loss: float

    def rows(self) -> list[np.ndarray]:
        return [self.original, self.visible, self.decoded, self.recon, self.error]


def unnormalize_patches(
    predictions: torch.Tensor, pixels: torch.Tensor, tubelet: int, patch: int, token_idx: torch.Tensor
) -> torch.Tensor:
    """Normalized predictions (B, n, t·p·p·3) -> pixels in [0, 1], using each token's own mean and std.

    `pixels` is the original clip in [0, 1], (B, 3, T, H, W); statistics are per token and colour channel
    over its t·p·p values, with the unbiased std (as the targets were normalized).
    """
    raw = pixel_targets(pixels, tubelet, patch, normalize=False, token_idx=token_idx, mean=(0, 0, 0), std=(1, 1, 1))
    b, n, _ = raw.shape
    raw = raw.view(b, n, -1, 3)  # (B, n, t·p·p, 3)
    mean = raw.mean(dim=-2, keepdim=True)
    std = raw.var(dim=-2, unbiased=True, keepdim=True).sqrt()
    restored = predictions.float().view(b, n, -1, 3) * (std + TARGET_EPS) + mean
    return restored.clamp(0, 1).view(b, n, -1)  # (B, n, t·p·p·3)


def paint_tokens(canvas: torch.Tensor, values: torch.Tensor, token_idx: torch.Tensor, tubelet: int, patch: int) -> None:
    """Write tokens (B, n, t·p·p·3) (official (t, p, p, c) layout) into canvas (B, 3, T, H, W) in place."""
    view = tubelet_view(canvas, tubelet, patch, channels_last=True)  # (B, T', H', W', t, p, p, 3), shares memory
    gh, gw = view.shape[2], view.shape[3]
    frame, rest = token_idx // (gh * gw), token_idx % (gh * gw)
    batch = torch.arange(canvas.shape[0]).unsqueeze(1)  # (B, 1)
    view[batch, frame, rest // gw, rest % gw] = values.view(*token_idx.shape, *view.shape[4:])


def token_mask_pixels(mask: torch.Tensor, like: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """A (B, N) token mask as a pixel mask shaped like the clip (B, 3, T, H, W)."""
    out = torch.zeros_like(like)
    idx = torch.nonzero(mask[0]).view(1, -1)  # (1, k)
    paint_tokens(out, torch.ones(1, idx.shape[1], out.shape[1] * tubelet * patch * patch), idx, tubelet, patch)
    return out.bool()


@torch.no_grad()
def reconstruct(model: nn.Module, video: torch.Tensor, masks: MaskSpec, seed: int = 0) -> Reconstruction:
    """Run a pretraining model on one normalized clip (1, 3, T, H, W) and build the panels."""
    c = model.config
    tubelet, patch = c.tubelet_size, c.patch_size
    grid = model.encoder.token_grid(video)
    encoder_mask, decoder_mask = masks.sample(1, grid, generator=torch_generator(seed, 0))
    indices = mask_indices(encoder_mask, decoder_mask)
    predicted, hidden_and_predicted = indices["predicted_idx"], indices["loss_weight"]  # (1, N_dec) each
    predictions = model(video, visible_idx=indices["visible_idx"], predicted_idx=predicted)  # (1, N_dec, t·p·p·3)
    loss = float(indexed_pretraining_loss(predictions, video, predicted, hidden_and_predicted, tubelet, patch))

    original = unnormalize(video).clamp(0, 1)  # (1, 3, T, H, W)
    hidden = token_mask_pixels(encoder_mask, original, tubelet, patch)
    decoded_tokens = torch.zeros_like(encoder_mask).scatter_(1, predicted, True)
    decoded = token_mask_pixels(decoded_tokens, original, tubelet, patch)
    restored = unnormalize_patches(predictions, original, tubelet, patch, predicted)  # (1, N_dec, P)

    recon = torch.where(hidden, torch.full_like(original, NOT_PREDICTED), original)
    keep = hidden_and_predicted[0]
    paint_tokens(recon, restored[:, keep], predicted[:, keep], tubelet, patch)  # visible tokens stay original
    rebuilt = token_mask_pixels(encoder_mask & decoded_tokens, original, tubelet, patch)
    error = torch.where(rebuilt, (recon - original).abs().mean(1, keepdim=True).expand_as(original) * ERROR_GAIN, 0)

    def frames(x: torch.Tensor) -> np.ndarray:
        return x[0].permute(1, 2, 3, 0).clamp(0, 1).numpy()  # (T, H, W, 3)

    return Reconstruction(
        original=frames(original),
        visible=frames(torch.where(hidden, torch.full_like(original, HIDDEN_GREY), original)),
        decoded=frames(torch.where(decoded, original, torch.full_like(original, HIDDEN_GREY))),
        recon=frames(recon),
        error=frames(error),
        loss=loss,
    )


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so that patches stay crisp."""
    return frame.repeat(scale, axis=0).repeat(scale, axis=1)


def auto_scale(height: int, minimum: int = 96) -> int:
    return max(1, -(-minimum // height))


def grid_image(result: Reconstruction, scale: int | None = None, title: str | None = None) -> Image.Image:
    """The 5 rows x T frames grid with row names, as an RGB image."""
    scale = scale or auto_scale(result.original.shape[1])
    cells = [[upscale(to_uint8(frame), scale) for frame in row] for row in result.rows()]
    return draw_text_grid(cells, ROW_NAMES, title)


def save_gif(result: Reconstruction, path: str, scale: int | None = None, fps: float = 4.0) -> None:
    """An animated GIF: each GIF frame puts the five panels of one time step side by side."""
    scale = scale or auto_scale(result.original.shape[1])
    frames = []
    for t in range(result.original.shape[0]):
        panels = [upscale(to_uint8(row[t]), scale) for row in result.rows()]
        frames.append(Image.fromarray(np.concatenate(panels, axis=1)))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
