"""The models against the official code: fixture parity, parameter counts, shapes, switches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models.tiny import TINY
from videomae import ModelConfig, create_model, list_models
from videomae.errors import ConfigError
from videomae.masking import make_mask
from videomae.models.vit import sinusoid_table

# Reference §1.2-1.3: exact official parameter counts.
CLASSIFIER_PARAMS = {  # name: (no head, head 400, head 710)
    "vit_small_patch16_224": (21_879_936, 22_033_936, 22_153_286),
    "vit_base_patch16_224": (86_227_200, 86_534_800, 86_773_190),
    "vit_large_patch16_224": (303_860_736, 304_270_736, 304_588_486),
    "vit_huge_patch16_224": (631_607_040, 632_119_440, 632_516_550),
    "vit_giant_patch14_224": (1_011_610_752, 1_012_174_352, 1_012_611_142),
}
PRETRAIN_PARAMS = {  # decoder depth 4, as released
    "pretrain_videomae_small_patch16_224": 24_029_376,
    "pretrain_videomae_base_patch16_224": 94_210_944,
    "pretrain_videomae_large_patch16_224": 317_782_016,
    "pretrain_videomae_huge_patch16_224": 645_659_392,
    "pretrain_videomae_giant_patch14_224": 1_026_306_560,
}


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_official_name_is_registered():
    assert set(list_models()) == set(CLASSIFIER_PARAMS) | set(PRETRAIN_PARAMS)


@pytest.mark.parametrize("name", sorted(CLASSIFIER_PARAMS))
def test_classifier_parameter_counts(name):
    expected = dict(zip((0, 400, 710), CLASSIFIER_PARAMS[name]))
    with torch.device("meta"):
        for num_classes, params in expected.items():
            assert count(create_model(name, num_classes=num_classes)) == params


@pytest.mark.parametrize("name", sorted(PRETRAIN_PARAMS))
def test_pretrain_parameter_counts(name):
    with torch.device("meta"):
        model = create_model(name)
    assert count(model) == PRETRAIN_PARAMS[name]
    assert model.config.decoder_depth == 4
    # The encoder alone is the headless classifier's trunk plus encoder.norm (= fc_norm's 2D).
    assert count(model.encoder) == CLASSIFIER_PARAMS[name.replace("pretrain_videomae", "vit")][0]


def test_giant_mlp_widths_are_official():
    with torch.device("meta"):
        model = create_model("pretrain_videomae_giant_patch14_224")
    assert model.encoder.blocks[0].mlp.fc1.out_features == 6144
    assert model.decoder.blocks[0].mlp.fc1.out_features == 2234
    assert model.decoder.head.out_features == 3 * 2 * 14 * 14


def test_state_dict_keys_are_official(official_tiny):
    pretrain = create_model("pretrain_videomae_base_patch16_224", **official_tiny["arch"])
    assert set(pretrain.state_dict()) == set(official_tiny["pretrain_state"])
    classifier = create_model("vit_base_patch16_224", **official_tiny["arch"], num_classes=7)
    assert set(classifier.state_dict()) == set(official_tiny["finetune_state"])


def test_pretraining_output_matches_official(official_tiny):
    expected = official_tiny["expected"]
    model = create_model("pretrain_videomae_base_patch16_224", **official_tiny["arch"]).eval()
    model.load_state_dict(official_tiny["pretrain_state"])
    with torch.no_grad():
        out = model(expected["video"], expected["encoder_mask"], expected["decoder_mask"])
    torch.testing.assert_close(out, expected["pretrain_output"], atol=1e-5, rtol=0)


def test_classifier_logits_and_features_match_official(official_tiny):
    expected = official_tiny["expected"]
    model = create_model("vit_base_patch16_224", **official_tiny["arch"], num_classes=7).eval()
    model.load_state_dict(official_tiny["finetune_state"])
    with torch.no_grad():
        torch.testing.assert_close(model(expected["video"]), expected["finetune_logits"], atol=1e-5, rtol=0)
        torch.testing.assert_close(
            model.forward_features(expected["video"]), expected["finetune_features"], atol=1e-5, rtol=0
        )


def test_pretrained_encoder_features_match_official(official_tiny):
    encoder = {
        k.removeprefix("encoder."): v
        for k, v in official_tiny["pretrain_state"].items()
        if k.startswith("encoder.") and not k.startswith("encoder.norm.")
    }
    model = create_model("vit_base_patch16_224", **official_tiny["arch"], num_classes=7).eval()
    missing, unexpected = model.load_state_dict(encoder, strict=False)
    assert sorted(missing) == ["fc_norm.bias", "fc_norm.weight", "head.bias", "head.weight"] and not unexpected
    with torch.no_grad():
        features = model.forward_features(official_tiny["expected"]["video"])
    torch.testing.assert_close(features, official_tiny["expected"]["features_from_pretrain_encoder"], atol=1e-5, rtol=0)


def official_sinusoid(n_position: int, d_hid: int) -> np.ndarray:
    """Transcription of the documented official formula (reference §1.1)."""
    table = np.array([[pos / np.power(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)] for pos in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return table.astype(np.float32)


def test_sinusoid_table_is_the_official_formula():
    table = sinusoid_table(50, 12, like=torch.zeros(1))
    assert table.shape == (1, 50, 12)
    np.testing.assert_array_equal(table[0].numpy(), official_sinusoid(50, 12))


def test_patch_embedding_of_gathered_tokens_equals_the_convolution():
    model = create_model("vit_base_patch16_224", **TINY, num_classes=0)
    video = torch.randn(2, 3, 4, 32, 32)
    conv = model.patch_embed.proj(video).flatten(2).transpose(1, 2)  # (B, N, D), the official path
    idx = torch.tensor([[0, 3, 9, 31], [1, 2, 20, 30]])
    torch.testing.assert_close(model.patch_embed(video), conv, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        model.patch_embed(video, idx), torch.gather(conv, 1, idx[..., None].expand(-1, -1, 32)), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("frames,height,width", [(8, 32, 32), (16, 32, 48), (32, 16, 32)])
def test_any_clip_length_and_resolution(frames, height, width):
    classifier = create_model("vit_base_patch16_224", **TINY, num_classes=5).eval()
    pretrain = create_model("pretrain_videomae_base_patch16_224", **TINY).eval()
    video = torch.randn(2, 3, frames, height, width)
    grid = (frames // 2, height // 8, width // 8)
    encoder_mask = make_mask("tube", 2, grid, 0.75, generator=torch.Generator().manual_seed(0))
    decoder_mask = make_mask("running_cell", 2, grid, 0.5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert classifier(video).shape == (2, 5)
        out = pretrain(video, encoder_mask, decoder_mask)
    assert out.shape == (2, int((~decoder_mask[0]).sum()), 3 * 2 * 8 * 8)


def test_clear_errors_for_clips_that_do_not_divide():
    model = create_model("vit_base_patch16_224", **TINY, num_classes=5)
    with pytest.raises(ConfigError, match="tubelet_size"):
        model(torch.randn(1, 3, 5, 32, 32))
    with pytest.raises(ConfigError, match="patch_size"):
        model(torch.randn(1, 3, 4, 30, 32))
    with pytest.raises(ConfigError, match=r"\(B, 3, T, H, W\)"):
        model(torch.randn(1, 4, 32, 32))


def test_mask_errors_name_the_problem():
    model = create_model("pretrain_videomae_base_patch16_224", **TINY)
    video = torch.randn(2, 3, 4, 32, 32)
    uneven = torch.zeros(2, 32, dtype=torch.bool)
    uneven[0, :10] = True
    with pytest.raises(ConfigError, match="different number of tokens"):
        model(video, uneven)
    with pytest.raises(ConfigError, match="shape"):
        model(video, torch.zeros(2, 31, dtype=torch.bool))


def test_decoder_mask_none_reconstructs_exactly_the_hidden_tokens():
    model = create_model("pretrain_videomae_base_patch16_224", **TINY).eval()
    video = torch.randn(2, 3, 4, 32, 32)
    encoder_mask = make_mask("tube", 2, (2, 4, 4), 0.75, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(video, encoder_mask), model(video, encoder_mask, ~encoder_mask))
        assert model(video, encoder_mask).shape[1] == 24


def test_fused_attention_equals_the_explicit_path():
    video = torch.randn(2, 3, 4, 32, 32)
    fused = create_model("vit_base_patch16_224", **TINY, num_classes=5).eval()
    explicit = create_model("vit_base_patch16_224", **TINY, num_classes=5, fused_attn=False).eval()
    explicit.load_state_dict(fused.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fused(video), explicit(video), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_computing_only_the_last_rows_equals_slicing_the_full_block(fused):
    """The last decoder block computes only the predicted rows: the same values and gradients as computing
    every row and keeping the last ones (the other rows still serve as keys and values)."""
    from videomae.models.config import ModelConfig
    from videomae.models.vit import Block

    torch.manual_seed(0)
    block = Block(16, 4, ModelConfig(fused_attn=fused), drop_path_rate=0.0)
    with torch.no_grad():
        block.attn.q_bias.normal_(), block.attn.v_bias.normal_()
    x = torch.randn(2, 7, 16, requires_grad=True)
    params = [x, *block.parameters()]
    results = []
    for out in (block(x, num_out=3), block(x)[:, -3:]):
        results.append((out, torch.autograd.grad(out, params, torch.ones_like(out))))
    assert results[0][0].shape == (2, 3, 16)
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-6, rtol=0)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_drop_path_is_per_sample_and_off_in_eval():
    model = create_model("vit_base_patch16_224", **TINY, num_classes=5, drop_path_rate=0.5)
    assert model.blocks[0].drop_path_rate == 0.0 and model.blocks[-1].drop_path_rate == 0.5
    video = torch.randn(2, 3, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(video), model(video))
        model.train()
        torch.manual_seed(0)
        outputs = {tuple(model(video).flatten().tolist()) for _ in range(8)}
    assert len(outputs) > 1


def test_headless_model_returns_features_and_reset_classifier_adds_a_head():
    model = create_model("vit_base_patch16_224", **TINY, num_classes=0)
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 32)
    model.reset_classifier(3)
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 3)
    assert model.head.weight.abs().max() < 0.02 * 0.001 * 6  # official head init: trunc-normal(.02) x 0.001


def test_classifier_init_follows_official_rules():
    model = create_model("vit_base_patch16_224", **TINY, num_classes=5)
    assert float(model.blocks[0].mlp.fc1.weight.detach().std()) == pytest.approx(0.02, rel=0.2)
    assert torch.count_nonzero(model.blocks[0].attn.q_bias) == 0
    pretrain = create_model("pretrain_videomae_base_patch16_224", **TINY)
    assert pretrain.mask_token.abs().max() <= 0.02  # truncated at ±1 std


def test_unknown_names_and_settings_are_rejected_with_the_valid_choices():
    with pytest.raises(ConfigError, match="vit_base_patch16_224"):
        create_model("vit_tiny")
    with pytest.raises(ConfigError, match="valid settings"):
        create_model("vit_base_patch16_224", embed_dims=3)


def test_official_keyword_aliases():
    model = create_model("vit_base_patch16_224", **{**TINY, "num_frames": 8}, num_classes=0)
    assert model.config.num_frames == 8
    alias = create_model(
        "vit_base_patch16_224",
        **{k: v for k, v in TINY.items() if k != "num_frames"},
        all_frames=8,
        layer_norm_eps=1e-5,
        num_classes=0,
    )
    assert alias.config.num_frames == 8 and alias.blocks[0].norm1.eps == 1e-5


@pytest.mark.parametrize("key", ["with_checkpoint", "with_cp", "use_checkpoint"])
def test_checkpointing_is_not_a_model_setting(key):
    with pytest.raises(ConfigError, match="activation_checkpointing=full"):
        create_model("vit_base_patch16_224", **TINY, **{key: True})
    stored = {**ModelConfig(**TINY).to_dict(), "use_checkpoint": False}  # a config.json written by videomae 0.1
    assert ModelConfig.from_dict(stored) == ModelConfig(**TINY)


def test_bf16_autocast_forward_is_close_to_fp32():
    model = create_model("pretrain_videomae_base_patch16_224", **TINY)
    mask = make_mask("tube", 1, (2, 4, 4), 0.5, generator=torch.Generator().manual_seed(0))
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        reference = model(video, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(video, mask)
    assert out.dtype == torch.bfloat16
    assert (out.float() - reference).abs().max() < 0.05 * reference.abs().max()  # bf16 keeps ~3 digits
