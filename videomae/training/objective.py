"""The pretraining objective: per-patch normalized pixel targets and the dual-masking loss (reference §3.4).

Targets and loss are computed in fp32 even under autocast: per-patch statistics and the squared error
lose too much in 16-bit floats.
"""

from __future__ import annotations

import functools
import math

import torch

from videomae.constants import IMAGENET_MEAN, IMAGENET_STD
from videomae.masking import mask_indices
from videomae.models.vit import gather_tubelets, tubelet_view


@functools.cache
def _channel_stats(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Per-channel statistics on `device`, made once (no host-to-device copy per step)."""
    return torch.tensor(mean, device=device), torch.tensor(std, device=device)


def unnormalize(video: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Normalized clip (B, 3, T, H, W) -> fp32 pixels in [0, 1]."""
    mean_t, std_t = _channel_stats(mean, std, video.device)
    return video.float() * std_t.view(1, -1, 1, 1, 1) + mean_t.view(1, -1, 1, 1, 1)


@torch.no_grad()
def pixel_targets(
    video: torch.Tensor,
    tubelet_size: int,
    patch_size: int,
    *,
    normalize: bool = True,
    token_idx: torch.Tensor | None = None,
    eps: float = 1e-6,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> torch.Tensor:
    """Reconstruction targets (B, n, t·p·p·3) of the tokens at token_idx (all if None), in fp32.

    The official layout: values ordered (t, p, p, c) with colour fastest. With `normalize`, each token's
    pixels are standardized per colour channel over its t·p·p values with the unbiased std, eps added to
    the std (not the variance). Tokens are gathered first, so only the needed ones are ever copied; the
    statistics are taken channel-first, where each channel's t·p·p values are contiguous, and only the
    result is laid out colour-fastest.
    """
    view = tubelet_view(video, tubelet_size, patch_size, channels_last=False)  # (B, T', H', W', C, t, p, p)
    patches = gather_tubelets(view, token_idx).float()  # (B, n, C·t·p·p)
    if patches.untyped_storage().data_ptr() == video.untyped_storage().data_ptr():
        patches = patches.clone()  # a single-token fp32 clip can come back as a view: never modify the input
    b, n, _ = patches.shape
    c = video.shape[1]
    patches = patches.view(b, n, c, -1)  # (B, n, C, t·p·p)
    mean_t, std_t = _channel_stats(mean, std, video.device)
    patches.mul_(std_t.view(c, 1)).add_(mean_t.view(c, 1))  # un-normalize to [0, 1] pixels
    if normalize:
        patches.sub_(patches.mean(dim=-1, keepdim=True))
        # unbiased std of the centred values in one fused reduction (no squared copy)
        std_ = torch.linalg.vector_norm(patches, dim=-1, keepdim=True).div_(math.sqrt(patches.shape[-1] - 1))
        patches.div_(std_.add_(eps))
    return patches.transpose(-1, -2).reshape(b, n, -1)  # (B, n, t·p·p·C)


def reconstruction_loss(predictions: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Token-weighted MSE over the whole batch: sum(mse_token · weight) / max(sum(weight), 1), in fp32.

    predictions and targets (B, n, P); weight (B, n), bool or float.
    """
    per_token = (predictions.float() - targets.float()).pow(2).mean(dim=-1)  # (B, n); keeps only the error
    weight = weight.float()
    return (per_token * weight).sum() / weight.sum().clamp_min(1.0)


def pretraining_loss(
    predictions: torch.Tensor,
    video: torch.Tensor,
    encoder_mask: torch.Tensor,
    decoder_mask: torch.Tensor | None,
    tubelet_size: int,
    patch_size: int,
    normalize_target: bool = True,
) -> torch.Tensor:
    """The official VideoMAE V2 loss for `predictions = model(video, encoder_mask, decoder_mask)`.

    Only tokens hidden from the encoder *and* reconstructed by the decoder count: with a running-cell
    decoder mask, about 10% of the decoder's queries are tokens the encoder saw; they get no loss.
    """
    decoder_mask = None if decoder_mask is None else decoder_mask.to(video.device)
    indices = mask_indices(encoder_mask.to(video.device), decoder_mask)
    return indexed_pretraining_loss(
        predictions, video, indices["predicted_idx"], indices["loss_weight"], tubelet_size, patch_size, normalize_target
    )


def indexed_pretraining_loss(
    predictions: torch.Tensor,
    video: torch.Tensor,
    predicted_idx: torch.Tensor,
    loss_weight: torch.Tensor,
    tubelet_size: int,
    patch_size: int,
    normalize_target: bool = True,
) -> torch.Tensor:
    """`pretraining_loss` for masks given as indices (`videomae.masking.mask_indices`): static shapes, no wait on
    the device. predicted_idx (B, N_dec): the prediction rows' tokens; loss_weight (B, N_dec): hidden ones."""
    with torch.autocast(device_type=video.device.type, enabled=False):
        targets = pixel_targets(video, tubelet_size, patch_size, normalize=normalize_target, token_idx=predicted_idx)
        return reconstruction_loss(predictions, targets, loss_weight)
