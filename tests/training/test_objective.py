"""Targets and loss against the official fixture and the documented formulas (reference §3.4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videomae.masking import make_mask, mask_indices
from videomae.training.objective import pixel_targets, pretraining_loss, reconstruction_loss

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


def official_targets(video, patch, normalize):
    """b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c, normalized per token and channel, flattened."""
    x = video * STD + MEAN
    b, c, t, h, w = x.shape
    x = x.view(b, c, t // 2, 2, h // patch, patch, w // patch, patch).permute(0, 2, 4, 6, 3, 5, 7, 1)
    x = x.reshape(b, -1, 2 * patch * patch, c)
    if normalize:
        x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return x.reshape(b, x.shape[1], -1)


def test_targets_match_the_official_fixture(official_tiny):
    expected = official_tiny["expected"]
    torch.testing.assert_close(
        pixel_targets(expected["video"], 2, 8), expected["normalized_targets"], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        pixel_targets(expected["video"], 2, 8, normalize=False), expected["raw_targets"], atol=1e-6, rtol=0
    )


def test_targets_follow_the_documented_formula_and_gather_by_index():
    video = torch.randn(2, 3, 4, 16, 24)
    torch.testing.assert_close(pixel_targets(video, 2, 8), official_targets(video, 8, True))
    idx = torch.tensor([[0, 5, 7], [1, 2, 11]])
    full = official_targets(video, 8, True)
    torch.testing.assert_close(
        pixel_targets(video, 2, 8, token_idx=idx), torch.gather(full, 1, idx[..., None].expand(-1, -1, full.shape[-1]))
    )


def test_loss_matches_the_official_fixture(official_tiny):
    expected = official_tiny["expected"]
    loss = pretraining_loss(
        expected["pretrain_output"], expected["video"], expected["encoder_mask"], expected["decoder_mask"], 2, 8
    )
    torch.testing.assert_close(loss, expected["loss"], atol=1e-6, rtol=1e-6)


def test_loss_counts_only_hidden_and_reconstructed_tokens():
    video = torch.randn(2, 3, 4, 16, 16)  # 2x2x2 = 8 tokens
    encoder_mask = make_mask("tube", 2, (2, 2, 2), 0.5, generator=torch.Generator().manual_seed(0))
    decoder_mask = make_mask("running_cell", 2, (2, 2, 2), 0.5, generator=torch.Generator().manual_seed(1))
    predictions = torch.randn(2, 4, 384)
    loss = pretraining_loss(predictions, video, encoder_mask, decoder_mask, 2, 8)
    full = official_targets(video, 8, True)
    errors, count = 0.0, 0
    for b in range(2):
        predicted = (~decoder_mask[b]).nonzero().flatten()
        for row, token in enumerate(predicted.tolist()):
            if encoder_mask[b, token]:
                errors += float((predictions[b, row] - full[b, token]).pow(2).mean())
                count += 1
    assert count > 0
    assert abs(float(loss) - errors / count) < 1e-5


def test_loss_is_fp32_under_autocast_and_the_gradient_keeps_the_prediction_dtype():
    predictions = torch.randn(1, 4, 384).bfloat16().requires_grad_()
    targets = torch.randn(1, 4, 384)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = reconstruction_loss(predictions, targets, torch.ones(1, 4, dtype=torch.bool))
    assert loss.dtype == torch.float32
    loss.backward()
    assert predictions.grad.dtype == torch.bfloat16


def test_loss_gradient_is_the_weighted_error():
    """d loss / d prediction = 2 · w · (prediction - target) / (P · sum w): hidden tokens only, each token
    weighted equally."""
    predictions = torch.randn(2, 5, 12, requires_grad=True)
    targets = torch.randn(2, 5, 12)
    weight = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    reconstruction_loss(predictions, targets, weight).backward()
    expected = 2 * weight[..., None] * (predictions.detach() - targets) / (12 * weight.sum())
    torch.testing.assert_close(predictions.grad, expected)
    assert predictions.grad[0, 1].abs().max() == 0


@pytest.mark.data_stack  # the training stages import the data package (torchvision)
def test_the_loss_on_all_decoded_tokens_also_counts_those_the_encoder_saw():
    """`loss_on_all_decoded`: the mean error over every decoded token; the default: over the hidden ones only."""
    from videomae.training.stages import loss_token_count, reconstruction_objective

    video = torch.randn(2, 3, 4, 16, 16)  # 2x2x2 = 8 tokens
    generator = torch.Generator().manual_seed(0)
    encoder_mask = make_mask("tube", 2, (2, 2, 2), 0.5, generator=generator)
    decoder_mask = make_mask("running_cell", 2, (2, 2, 2), 0.5, generator=generator)
    batch = {"video": video, **mask_indices(encoder_mask, decoder_mask)}
    predictions = torch.randn(2, 4, 384)

    def model(video, visible_idx, predicted_idx):
        return predictions

    targets = torch.gather(official_targets(video, 8, True), 1, batch["predicted_idx"][..., None].expand(-1, -1, 384))
    errors = (predictions - targets).pow(2).mean(dim=-1)  # (2, 4): every decoded token
    hidden = batch["loss_weight"]
    assert 0 < int(hidden.sum()) < hidden.numel()  # some decoded tokens were visible to the encoder
    rng = np.random.default_rng(0)
    for all_decoded, weight in ((False, hidden), (True, torch.ones_like(hidden))):
        loss = reconstruction_objective(2, 8, True, all_decoded)(model, batch, rng)
        torch.testing.assert_close(loss, (errors * weight).sum() / weight.sum())
        assert int(loss_token_count(all_decoded)(batch)) == int(weight.sum())
