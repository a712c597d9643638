"""Hugging Face transformers VideoMAE directories: import with identical outputs, export, round trips."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install videomae[hf])")

from tests.checkpoint.helpers import TINY  # noqa: E402
from tests.conftest import OFFICIAL_TINY  # noqa: E402
from videomae.checkpoint import save_hf  # noqa: E402
from videomae.factory import create_model, load_pretrained_with_report  # noqa: E402

ATOL = 1e-5


def _hf_config(**changes):
    settings = dict(
        image_size=32,
        patch_size=8,
        num_frames=4,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=128,
        use_mean_pooling=False,
        num_labels=5,
    )
    return transformers.VideoMAEConfig(**{**settings, **changes})


def _randomized(model):
    """Every parameter random (LayerNorm and biases included), so a mix-up cannot hide behind init values."""
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            offset = 0.5 if parameter.dim() == 1 else 0.0  # LayerNorm weights away from 0
            parameter.copy_(torch.randn_like(parameter) * 0.05 + offset)
    return model.eval()


def _inputs():
    torch.manual_seed(1)
    video = torch.randn(2, 4, 3, 32, 32)  # HF layout (B, T, C, H, W)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, ::2] = True
    mask[1, 1::2] = True
    return video, mask


def test_pretraining_hf_to_ours_to_hf(tmp_path):
    hf = _randomized(transformers.VideoMAEForPreTraining(_hf_config()))
    hf.save_pretrained(tmp_path / "hf")
    model, report = load_pretrained_with_report(tmp_path / "hf")
    assert report.ok and model.config.kind == "pretrain" and model.config.norm_eps == 1e-12
    video, mask = _inputs()
    with torch.no_grad():
        expected = hf(video, bool_masked_pos=mask).logits
        torch.testing.assert_close(model.eval()(video.transpose(1, 2), mask, None), expected, rtol=0, atol=ATOL)
        save_hf(model, tmp_path / "back")
        again = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "back").eval()
        torch.testing.assert_close(again(video, bool_masked_pos=mask).logits, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("mean_pooling", [True, False])
def test_classification_hf_to_ours_to_hf(tmp_path, mean_pooling):
    hf = _randomized(transformers.VideoMAEForVideoClassification(_hf_config(use_mean_pooling=mean_pooling)))
    hf.save_pretrained(tmp_path / "hf")
    model, report = load_pretrained_with_report(tmp_path / "hf")
    assert report.ok and model.config.num_classes == 5 and model.config.use_mean_pooling == mean_pooling
    video, _ = _inputs()
    with torch.no_grad():
        expected = hf(video).logits
        torch.testing.assert_close(model.eval()(video.transpose(1, 2)), expected, rtol=0, atol=ATOL)
        save_hf(model, tmp_path / "back")
        again = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "back").eval()
        torch.testing.assert_close(again(video).logits, expected, rtol=0, atol=ATOL)


def test_bare_videomae_model_is_our_headless_classifier(tmp_path):
    hf = _randomized(transformers.VideoMAEModel(_hf_config(use_mean_pooling=True)))
    hf.save_pretrained(tmp_path / "hf")
    model, report = load_pretrained_with_report(tmp_path / "hf")
    assert model.config.num_classes == 0 and set(report.initialized) == {"fc_norm.weight", "fc_norm.bias"}
    video, _ = _inputs()
    with torch.no_grad():
        expected = hf(video).last_hidden_state
        torch.testing.assert_close(model.eval().forward_tokens(video.transpose(1, 2)), expected, rtol=1e-5, atol=ATOL)
        save_hf(model, tmp_path / "back")
        again = transformers.VideoMAEModel.from_pretrained(tmp_path / "back").eval()
        torch.testing.assert_close(again(video).last_hidden_state, expected, rtol=0, atol=ATOL)


def test_official_checkpoint_exports_to_hf(official_tiny, tmp_path):
    """Official fixture -> HF: the pretraining predictions agree (v1 decoder-mask semantics).

    transformers' decoder.norm eps is fixed at 1e-5 (ours 1e-6), hence the looser tolerance.
    """
    e = official_tiny["expected"]
    model = create_model(pretrained=str(OFFICIAL_TINY / "pretrain_checkpoint.pth"), **TINY).eval()
    save_hf(model, tmp_path / "hf")
    hf = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        ours = model(e["video"], e["encoder_mask"], None)
        theirs = hf(e["video"].transpose(1, 2), bool_masked_pos=e["encoder_mask"]).logits
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)
    back, report = load_pretrained_with_report(tmp_path / "hf")
    assert report.ok
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(e["video"], e["encoder_mask"]), theirs, rtol=0, atol=ATOL)
