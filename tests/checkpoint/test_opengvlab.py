"""OpenGVLab's custom-code VideoMAEv2 layout (OpenGVLab/VideoMAEv2-Base, ...) read without running its code.

The fixture repeats the published layout of OpenGVLab/VideoMAEv2-Base: config.json with the same keys (model_type
"VideoMAEv2_Base", auto_map, model_config with the official VisionTransformer's keyword arguments), model.safetensors
holding the wrapper's state dict (`model.` + official keys; no head, trained fc_norm), preprocessor_config.json and
the two code files, here stubs that fail if anything runs them.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from tests.apps.fixtures import TINY_ARCH
from tests.checkpoint.fake_hub import fake_hub, hub_env  # noqa: F401  (fixtures)
from tests.checkpoint.helpers import TINY_SETTINGS, clip, tiny_classifier
from videomae.checkpoint import locate
from videomae.errors import CheckpointError
from videomae.factory import create_model, load_pretrained_with_report

NEVER_RUN = b'raise RuntimeError("videomae must never run the custom code")\n'


def opengvlab_config(**changes) -> dict:
    settings = {
        "img_size": TINY_ARCH["img_size"],
        "patch_size": TINY_ARCH["patch_size"],
        "in_chans": 3,
        "num_classes": 0,
        "embed_dim": TINY_ARCH["embed_dim"],
        "depth": TINY_ARCH["depth"],
        "num_heads": TINY_ARCH["num_heads"],
        "mlp_ratio": 4,
        "qkv_bias": True,
        "qk_scale": None,
        "drop_rate": 0.0,
        "attn_drop_rate": 0.0,
        "drop_path_rate": 0.0,
        "norm_layer": "nn.LayerNorm",
        "layer_norm_eps": 1e-6,
        "init_values": 0.0,
        "use_learnable_pos_emb": False,
        "tubelet_size": 2,
        "use_mean_pooling": True,
        "with_cp": False,
        "num_frames": TINY_ARCH["num_frames"],
        "cos_attn": False,
        **changes,
    }
    return {
        "_name_or_path": "./",
        "model_type": "VideoMAEv2_Base",
        "architectures": ["VideoMAEv2_Base"],
        "auto_map": {"AutoModel": "modeling_videomaev2.VideoMAEv2", "AutoConfig": "modeling_config.VideoMAEv2Config"},
        "model_config": settings,
        "transformers_version": "4.38.0",
        "use_cache": True,
    }


def write_opengvlab_repo(folder, encoder_state: dict, config: dict):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    save_file(
        {f"model.{key}": value.contiguous() for key, value in encoder_state.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "do_center_crop": True,
                "do_normalize": True,
                "do_resize": True,
                "do_rescale": True,
                "image_processor_type": "VideoMAEImageProcessor",
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
                "resample": 2,
                "rescale_factor": 1 / 255,
                "size": {"shortest_edge": 32},
                "crop_size": {"height": 32, "width": 32},
            }
        )
    )
    for code in ("modeling_videomaev2.py", "modeling_config.py"):
        (folder / code).write_bytes(NEVER_RUN)
    (folder / "README.md").write_text("# VideoMAE-v2 (tiny test copy of the layout)\n")
    return folder


@pytest.fixture
def encoder():
    """A headless classifier (the released encoders: fc_norm, no head) and its official-layout .pth."""
    return tiny_classifier(7, num_classes=0)


def test_loads_with_the_outputs_of_the_official_layout(encoder, tmp_path):
    torch.save({"model": encoder.state_dict()}, tmp_path / "official.pth")
    repo = write_opengvlab_repo(tmp_path / "VideoMAEv2-Tiny", encoder.state_dict(), opengvlab_config())
    official = create_model(pretrained=str(tmp_path / "official.pth"), **TINY_SETTINGS)
    custom, report = load_pretrained_with_report(repo)  # no settings: config.json has them all
    assert report.ok and report.source_format == "opengvlab" and locate(repo).kind == "opengvlab"
    assert custom.config.num_classes == 0 and custom.config.norm_eps == 1e-6
    with torch.no_grad():
        assert torch.equal(custom.eval()(clip()), official.eval()(clip()))  # pooled fc_norm features (B, D)
    assert "modeling code was not run" in str(report)


def test_from_the_hub_takes_config_and_weights_only(encoder, hub_env, fake_hub, tmp_path):
    fake_hub.publish(
        "OpenGVLab/VideoMAEv2-Tiny", write_opengvlab_repo(tmp_path / "repo", encoder.state_dict(), opengvlab_config())
    )
    model = create_model(pretrained="hf-hub:OpenGVLab/VideoMAEv2-Tiny")
    with torch.no_grad():
        assert torch.equal(model.eval()(clip()), encoder(clip()))
    assert not any(".py" in request for request in fake_hub.requests)


@pytest.mark.parametrize("setting, value", [("init_values", 0.1), ("cos_attn", True), ("use_learnable_pos_emb", True)])
def test_settings_no_official_model_has_are_refused(encoder, tmp_path, setting, value):
    repo = write_opengvlab_repo(tmp_path / "repo", encoder.state_dict(), opengvlab_config(**{setting: value}))
    with pytest.raises(CheckpointError, match=f"model_config {setting}={value!r} is not supported"):
        create_model(pretrained=str(repo))
