"""Official .pth files: parity with the official-code fixture, containers, prefixes, dtypes, safety, heads."""

from __future__ import annotations

import argparse
import logging
import os

import pytest
import torch

from tests.checkpoint.helpers import TINY, fp16, prefixed
from tests.conftest import OFFICIAL_TINY
from videomae.checkpoint import load_state_dict_file
from videomae.checkpoint.official import infer_fields, kinetics_map
from videomae.errors import CheckpointError
from videomae.factory import create_model, load_pretrained, load_pretrained_with_report
from videomae.models import build_model, get_config


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


# ------------------------------------------------------------------ parity with the official code


def test_pretrain_checkpoint_matches_official_output(official_tiny):
    e = official_tiny["expected"]
    model = create_model(pretrained=str(OFFICIAL_TINY / "pretrain_checkpoint.pth"), **TINY).eval()
    assert model.config.kind == "pretrain" and model.config.decoder_depth == 2
    with torch.no_grad():
        _close(model(e["video"], e["encoder_mask"], e["decoder_mask"]), e["pretrain_output"])


def test_finetune_checkpoint_module_container_matches_official(official_tiny):
    e = official_tiny["expected"]
    model = create_model(pretrained=str(OFFICIAL_TINY / "finetune_checkpoint.pth"), num_heads=4).eval()
    assert model.config.num_classes == official_tiny["config"]["num_classes"]
    with torch.no_grad():
        _close(model(e["video"]), e["finetune_logits"])
        _close(model.forward_features(e["video"]), e["finetune_features"])


def test_pretrain_encoder_into_classifier(official_tiny, caplog):
    e = official_tiny["expected"]
    with caplog.at_level(logging.INFO, logger="videomae.checkpoint"):
        model, report = load_pretrained_with_report(
            OFFICIAL_TINY / "pretrain_checkpoint.pth", kind="classifier", num_classes=7, num_heads=4
        )
    with torch.no_grad():
        _close(model.eval().forward_features(e["video"]), e["features_from_pretrain_encoder"])
    assert report.ok
    assert {"mask_token", "encoder_to_decoder.weight", "encoder.norm.weight", "decoder.head.weight"} <= set(
        report.dropped
    )
    assert set(report.initialized) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    assert "decoder.* (30 keys)" in str(report) and "freshly initialized" in caplog.text


def test_named_model_takes_checkpoint_head_size(official_tiny):
    model = load_pretrained(
        OFFICIAL_TINY / "finetune_checkpoint.pth",
        "vit_small_patch16_224",
        embed_dim=64,
        depth=2,
        num_heads=4,
        patch_size=8,
    )
    assert model.config.num_classes == 7


# ------------------------------------------------------------------ layouts, dtypes, prefixes


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: fp16(sd),
        lambda sd: {"model": prefixed(sd, "_orig_mod.")},
        lambda sd: {"module": fp16(prefixed(sd, "_orig_mod."))},
        lambda sd: {
            "model": sd,
            "optimizer": {"state": {}},
            "epoch": 3,
            "args": argparse.Namespace(lr=1e-3, model="x"),
        },
    ],
    ids=["raw-fp16", "compiled", "deepspeed-fp16", "training-namespace"],
)
def test_finetune_layouts_load(official_tiny, tmp_path, wrap):
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(official_tiny["finetune_state"]), path)
    model, report = load_pretrained_with_report(path, num_heads=4)
    tol = 5e-3 if any("float16" in note for note in report.notes) else 1e-5  # fp16 weights round
    e = official_tiny["expected"]
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(e["video"]), e["finetune_logits"], rtol=0, atol=tol)
    assert model.patch_embed.proj.weight.dtype == torch.float32


def test_fp16_cast_is_reported(official_tiny, tmp_path):
    torch.save(fp16(official_tiny["finetune_state"]), tmp_path / "half.pth")
    _, report = load_pretrained_with_report(tmp_path / "half.pth", num_heads=4)
    assert "cast torch.float16 -> torch.float32" in str(report)


def test_backbone_prefix_and_deepspeed_directory(official_tiny, tmp_path):
    encoder = {k: v for k, v in official_tiny["finetune_state"].items() if not k.startswith(("head.", "fc_norm."))}
    ds_dir = tmp_path / "checkpoint-9"
    ds_dir.mkdir()
    torch.save(
        {
            "module": prefixed(encoder, "backbone."),
            "param_shapes": [{"a": torch.Size([2])}],
            "ds_version": "0.14",
            "global_steps": 10,
            "dp_world_size": 1,
        },
        ds_dir / "mp_rank_00_model_states.pt",
    )
    (tmp_path / "latest").write_text("checkpoint-9")
    model, report = load_pretrained_with_report(tmp_path, num_heads=4, num_classes=3)
    assert report.ok and model.config.num_classes == 3
    assert set(report.initialized) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
    torch.testing.assert_close(model.blocks[1].mlp.fc2.weight, encoder["blocks.1.mlp.fc2.weight"])


def test_safetensors_state_dict(official_tiny, tmp_path):
    from safetensors.torch import save_file

    save_file(official_tiny["finetune_state"], str(tmp_path / "weights.safetensors"))
    assert set(load_state_dict_file(tmp_path / "weights.safetensors")) == set(official_tiny["finetune_state"])


# ------------------------------------------------------------------ safety


class Payload:
    """Unpickling this would run os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Custom:
    pass


@pytest.mark.parametrize("make", [lambda m: Payload(m), lambda m: Custom()], ids=["os.system", "custom-class"])
def test_pickled_code_is_refused_and_never_runs(official_tiny, tmp_path, make):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": official_tiny["finetune_state"], "extra": make(marker)}, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path, num_heads=4)
    message = str(info.value)
    assert "not plain tensors" in message and "re-save" in message
    assert ("system" in message) if isinstance(make(marker), Payload) else ("Custom" in message)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_pretrained(tmp_path / "junk.pth")
    torch.save({"epoch": 3}, tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="no state dict"):
        load_pretrained(tmp_path / "nostate.pth")
    with pytest.raises(CheckpointError, match="missing.pth does not exist"):
        load_pretrained(tmp_path / "missing.pth")


# ------------------------------------------------------------------ heads


def _k710_classifier(tmp_path):
    config = get_config("vit_small_patch16_224", embed_dim=64, depth=1, num_heads=1, patch_size=8, num_classes=710)
    state = build_model(config).state_dict()
    state["head.weight"] = torch.arange(710, dtype=torch.float32)[:, None].repeat(1, 64)
    state["head.bias"] = torch.arange(710, dtype=torch.float32)
    torch.save(state, tmp_path / "k710.pth")
    return tmp_path / "k710.pth"


@pytest.mark.parametrize("classes", [400, 600, 700])
def test_k710_head_rows_selected_for_kinetics_subsets(tmp_path, classes):
    model, report = load_pretrained_with_report(_k710_classifier(tmp_path), num_classes=classes, num_heads=1)
    rows = torch.tensor(kinetics_map(classes), dtype=torch.float32)
    torch.testing.assert_close(model.head.bias.detach(), rows)
    torch.testing.assert_close(model.head.weight[:, 0].detach(), rows)
    assert f"K{classes}" in report.head_remap


def test_kinetics_map_matches_label_names():
    from importlib import resources

    base = resources.files("videomae").joinpath("resources/kinetics")
    k710 = base.joinpath("label_map_k710.txt").read_text().splitlines()
    k400 = base.joinpath("label_map_k400.txt").read_text().splitlines()
    assert [k710[j] for j in kinetics_map(400)] == k400


def test_mismatched_head_reinitialized_with_note(tmp_path, caplog):
    path = _k710_classifier(tmp_path)
    with caplog.at_level(logging.WARNING, logger="videomae.checkpoint"):
        model, report = load_pretrained_with_report(path, num_classes=400, remap_kinetics=False, num_heads=1)
    assert report.ok and report.head_remap is None
    assert "head.weight" in report.initialized and "710 classes" in str(report) and "re-initialized" in caplog.text
    assert model.head.bias.abs().max() < 1  # fresh init, not the checkpoint's rows
    _, report = load_pretrained_with_report(path, num_classes=51, num_heads=1)
    assert "head.bias" in report.initialized
    headless, report = load_pretrained_with_report(path, num_classes=0, num_heads=1)
    assert "head.weight" in report.dropped and "headless" in str(report)


# ------------------------------------------------------------------ strictness


def test_strict_errors_and_non_strict_report(official_tiny, tmp_path):
    state = dict(official_tiny["finetune_state"])
    state.pop("blocks.0.norm1.weight")
    state["blocks.1.mlp.fc1.bias"] = torch.zeros(5)
    state["stray.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError) as info:
        load_pretrained(tmp_path / "broken.pth", num_heads=4)
    text = str(info.value)  # one line, with one example of each problem
    assert "\n" not in text and "1 missing (e.g. blocks.0.norm1.weight)" in text
    assert "1 unexpected (e.g. stray.weight)" in text and "1 mis-shaped (e.g. blocks.1.mlp.fc1.bias is [5]" in text
    model, report = load_pretrained_with_report(tmp_path / "broken.pth", strict=False, num_heads=4)
    assert report.missing == ["blocks.0.norm1.weight"] and report.unexpected == ["stray.weight"]
    assert report.mismatched == [("blocks.1.mlp.fc1.bias", (5,), (256,))]
    torch.testing.assert_close(model.blocks[0].mlp.fc1.weight, state["blocks.0.mlp.fc1.weight"])


def test_classifier_checkpoint_into_pretrain_model_fails_strictly(official_tiny):
    with pytest.raises(CheckpointError, match="missing"):
        load_pretrained(OFFICIAL_TINY / "finetune_checkpoint.pth", kind="pretrain", **TINY)


# ------------------------------------------------------------------ architecture inference


@pytest.mark.parametrize(
    "name", ["pretrain_videomae_giant_patch14_224", "vit_huge_patch16_224", "vit_small_patch16_224"]
)
def test_infer_official_architectures(name):
    config = get_config(name, num_classes=710) if name.startswith("vit") else get_config(name)
    with torch.device("meta"):
        state = build_model(config).state_dict()
    fields = infer_fields(state, {})
    for key, value in fields.items():
        assert getattr(config, key) == value, key


def test_unofficial_width_needs_num_heads(official_tiny):
    with pytest.raises(CheckpointError, match="num_heads"):
        infer_fields(official_tiny["finetune_state"], {})
    assert infer_fields(official_tiny["finetune_state"], {"num_heads": 4})["depth"] == 2
