"""The zoo table: every entry's architecture has the parameter count of its released file.

Expected counts are the official architectures' (reference §1.2-1.3), not our code's output: `VisionTransformer`
without head, with 400/710/174-class heads, and `PretrainVisionTransformer` with a 4-block decoder. The VideoMAE V1
ViT-L pretraining model has a 12-block decoder of width 512: 8 more blocks of 3,151,872 parameters each (per block:
4·512 LN + 3·512² qkv + 2·512 q/v bias + 512²+512 proj + 512·2048+2048 fc1 + 2048·512+512 fc2).
"""

from __future__ import annotations

import pytest
import torch

from videomae import list_pretrained
from videomae.checkpoint.zoo import zoo_entry
from videomae.cli import main
from videomae.models import build_model

ENCODER = {"s": 21_879_936, "b": 86_227_200, "l": 303_860_736, "h": 631_607_040, "g": 1_011_610_752}
HEAD_400 = {"s": 22_033_936, "b": 86_534_800, "l": 304_270_736, "h": 632_119_440}
HEAD_710 = {"s": 22_153_286, "b": 86_773_190, "g": 1_012_611_142}
HEAD_174 = {"s": 21_946_926, "b": 86_361_006, "g": 1_011_855_918}
PRETRAIN = {"b": 94_210_944, "g": 1_026_306_560}
V1_LARGE_PRETRAIN = 317_782_016 + 8 * 3_151_872

EXPECTED = {
    "vit_g_hybrid_pt_1200e": PRETRAIN["g"],
    "vit_g_hybrid_pt_1200e_k710_ft": HEAD_710["g"],  # = 2.03 GB / 2 bytes (fp16), reference §1.2
    "vit_g_hybrid_pt_1200e_ssv2_ft": HEAD_174["g"],
    "vit_s_k710_dl_from_giant": HEAD_710["s"],  # 44.3 MB fp16
    "vit_b_k710_dl_from_giant": HEAD_710["b"],  # 174 MB fp16
    "vit_b_hybrid_pt_800e": ENCODER["b"],
    "vit_l_hybrid_pt_1200e": ENCODER["l"],
    "vit_h_hybrid_pt_1200e": ENCODER["h"],
    "VideoMAEv2-Base": ENCODER["b"],  # 345 MB fp32
    "VideoMAEv2-Large": ENCODER["l"],  # 1.22 GB fp32
    "VideoMAEv2-Huge": ENCODER["h"],
    "VideoMAEv2-giant": ENCODER["g"],
    "videomae-small-finetuned-kinetics": HEAD_400["s"],
    "videomae-small-finetuned-ssv2": HEAD_174["s"],
    "videomae-base": PRETRAIN["b"],  # 377 MB fp32
    "videomae-base-short": PRETRAIN["b"],
    "videomae-base-ssv2": PRETRAIN["b"],
    "videomae-base-short-ssv2": PRETRAIN["b"],
    "videomae-base-finetuned-kinetics": HEAD_400["b"],
    "videomae-base-short-finetuned-kinetics": HEAD_400["b"],
    "videomae-base-finetuned-ssv2": HEAD_174["b"],
    "videomae-base-short-finetuned-ssv2": HEAD_174["b"],
    "videomae-large": V1_LARGE_PRETRAIN,  # 1.37 GB fp32
    "videomae-large-finetuned-kinetics": HEAD_400["l"],
    "videomae-huge-finetuned-kinetics": HEAD_400["h"],
}


def test_every_entry_is_expected_and_named_once():
    names = [entry.name for entry in list_pretrained()]
    assert len(names) == len(set(names)) and set(names) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_builds_with_the_parameter_count_of_its_file(name):
    entry = zoo_entry(name)
    with torch.device("meta"):
        model = build_model(entry.model_config())
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[name]
    assert entry.source.startswith("hf-hub:") and (entry.classes == 0) == (entry.stage in ("pretrain", "encoder"))


def test_models_command_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "model", "stage", "classes", "dataset", "size", "source"]
    assert len(lines) == 1 + len(EXPECTED) and any(line.startswith("VideoMAEv2-Base ") for line in lines)
    assert main(["models", "--json"]) == 0
    assert '"source": "hf-hub:OpenGVLab/VideoMAE2/mae-g/vit_g_hybrid_pt_1200e.pth"' in capsys.readouterr().out


def test_recipes_start_from_zoo_names_another_recipes_run_or_name_what_was_not_released():
    from pathlib import Path

    from videomae.checkpoint.zoo import UNRELEASED
    from videomae.training import list_recipes
    from videomae.training.config import read_recipe

    recipes = list_recipes()
    for name in recipes:
        recipe = read_recipe(name)
        for start in filter(None, (recipe.get("pretrained"), recipe.get("distill", {}).get("teacher"))):
            made_by_a_recipe = Path(start).parts[:1] == ("runs",) and Path(start).parts[1] in recipes
            assert zoo_entry(start) is not None or Path(start).stem in UNRELEASED or made_by_a_recipe, (name, start)
