"""Recipes load and validate; overrides are typed and nested; mistakes give clear errors."""

from __future__ import annotations

import pytest

from videomae.errors import ConfigError
from videomae.training import list_recipes, load_recipe


def test_every_recipe_loads():
    names = list_recipes()
    assert {"tiny", "vit_b_hybrid_pt", "vit_g_k710_ft", "vit_g_k710_it_k400_ft", "vit_s_k710_distill"} <= set(names)
    for name in names:
        overrides = ["distill.teacher=teacher.pth"] if "distill" in name else []
        load_recipe(name, overrides)


def test_official_hyperparameters_reach_the_config():
    cfg = load_recipe("vit_g_k710_ft")
    assert (cfg.batch_size, cfg.epochs, cfg.optim.lr, cfg.optim.layer_decay, cfg.optim.clip_grad) == (
        3,
        35,
        1e-3,
        0.9,
        5.0,
    )
    assert cfg.model_args["drop_path_rate"] == 0.3 and cfg.optim.weight_decay == 0.1
    pt = load_recipe("vit_g_hybrid_pt")
    assert (pt.optim.lr, pt.optim.clip_grad, pt.data.num_sample, pt.optim.betas) == (6e-4, 0.02, 4, (0.9, 0.95))


def test_nested_overrides_are_typed():
    cfg = load_recipe(
        "tiny",
        [
            "optim.lr=1e-3",
            "data.num_frames=8",
            "optim.betas=[0.8, 0.9]",
            "max_steps=3",
            "data.synthetic.num_videos=12",
            "optim.clip_grad=none",
            "output_dir=/tmp/x y",
        ],
    )
    assert cfg.optim.lr == 1e-3 and cfg.data.num_frames == 8 and cfg.optim.betas == (0.8, 0.9)
    assert cfg.max_steps == 3 and cfg.data.synthetic.num_videos == 12 and cfg.optim.clip_grad is None
    assert cfg.output_dir == "/tmp/x y"


@pytest.mark.parametrize(
    "override,message",
    [
        ("optim.lrr=1", "unknown setting 'optim.lrr'"),
        ("batch_size=two", "batch_size expects int"),
        ("precision=fp8", "precision must be one of"),
        ("noequals", "key=value"),
    ],
)
def test_bad_overrides_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe("tiny", [override])


def test_unknown_recipe_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available: .*tiny"):
        load_recipe("nope")


def test_a_run_config_saved_by_an_earlier_release_still_loads(tmp_path):
    import json

    from videomae.training.config import config_from_json, load_recipe, save_config

    path = tmp_path / "config.json"
    save_config(load_recipe("tiny"), str(path))
    old = json.loads(path.read_text())
    old.update(cpu_allocator="auto", mmap_threshold_mb=None, activation_checkpointing=True)  # the 0.1.0 fields
    path.write_text(json.dumps(old))
    assert config_from_json(str(path)).activation_checkpointing == "full"
