"""Our format: model.safetensors + config.json, loadable with no model name."""

from __future__ import annotations

import json

import pytest
import torch

from tests.checkpoint.helpers import TINY
from tests.conftest import OFFICIAL_TINY
from videomae.checkpoint import save_pretrained
from videomae.errors import CheckpointError
from videomae.factory import create_model, load_pretrained


def test_round_trip_pretrain_keeps_decoder_and_outputs(official_tiny, tmp_path):
    e = official_tiny["expected"]
    model = create_model(pretrained=str(OFFICIAL_TINY / "pretrain_checkpoint.pth"), **TINY).eval()
    save_pretrained(model, tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["format"] == "videomae" and config["format_version"] == 1 and config["kind"] == "pretrain"
    loaded = create_model(pretrained=str(tmp_path / "ours")).eval()
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(e["video"], e["encoder_mask"], e["decoder_mask"]), e["pretrain_output"], rtol=0, atol=1e-5
        )


def test_round_trip_classifier_with_overrides(official_tiny, tmp_path):
    model = create_model(pretrained=str(OFFICIAL_TINY / "finetune_checkpoint.pth"), num_heads=4)
    save_pretrained(model, tmp_path / "ours")
    loaded = load_pretrained(tmp_path / "ours", num_frames=8, drop_path_rate=0.1)
    assert loaded.config.num_frames == 8 and loaded.config.drop_path_rate == 0.1
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    encoder = load_pretrained(
        tmp_path / "ours", "vit_small_patch16_224", embed_dim=64, depth=2, num_heads=4, patch_size=8, num_classes=0
    )
    assert "head.weight" not in encoder.state_dict()


def test_bad_native_directories(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"format": "videomae", "format_version": 99}))
    with pytest.raises(CheckpointError, match="version 99"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "videomae", "format_version": 1}))
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="neither"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="DeepSpeed"):
        load_pretrained(tmp_path)


def test_a_name_does_not_override_the_architecture_a_checkpoint_carries(tmp_path):
    from videomae import create_model
    from videomae.checkpoint import save_pretrained

    tiny = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=1, num_heads=2)
    save_pretrained(create_model("vit_small_patch16_224", **tiny, num_classes=5), tmp_path / "clf")
    loaded = create_model("vit_small_patch16_224", pretrained=str(tmp_path / "clf"))  # ViT-S name, tiny weights
    assert (loaded.config.embed_dim, loaded.config.depth, loaded.config.num_classes) == (32, 1, 5)
    save_pretrained(
        create_model(
            "pretrain_videomae_small_patch16_224", **tiny, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2
        ),
        tmp_path / "pt",
    )
    encoder = create_model("vit_small_patch16_224", pretrained=str(tmp_path / "pt"), num_classes=3)
    assert encoder.config.kind == "classifier" and encoder.config.embed_dim == 32 and encoder.config.num_classes == 3
