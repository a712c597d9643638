"""Progressive training end to end: pretrain -> post-pretrain on K710-style labels -> K400-style fine-tuning
through the 710 -> 400 head map -> multi-view evaluation, all on tiny synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

import videomae
from videomae.training import run

SMALL = ["data.synthetic.num_videos=8", "data.num_sample=1", "val_every=0", "test_at_end=false"]
MAP_710_TO_400 = Path(videomae.__file__).parent / "resources" / "kinetics" / "label_710to400.json"


def test_pretrain_then_k710_then_k400(tiny_recipe, tmp_path):
    pretrain = run(tiny_recipe("tiny", tmp_path / "pt", "max_steps=4"))
    assert pretrain.step == 4 and (tmp_path / "pt" / "export" / "config.json").exists()

    k710 = run(
        tiny_recipe(
            "tiny_finetune",
            tmp_path / "k710",
            *SMALL,
            "max_steps=4",
            "data.synthetic.num_classes=710",
            f"pretrained={tmp_path / 'pt' / 'export'}",
        )
    )
    assert all(loss is not None for loss in k710.losses)
    head710 = load_file(str(tmp_path / "k710" / "export" / "model.safetensors"))["head.weight"]
    assert head710.shape[0] == 710

    k400 = run(
        tiny_recipe(
            "tiny_finetune",
            tmp_path / "k400",
            *SMALL,
            "max_steps=2",
            "optim.lr=0",
            "data.synthetic.num_classes=400",
            f"pretrained={tmp_path / 'k710' / 'export'}",
        )
    )
    assert k400.step == 2
    head400 = load_file(str(tmp_path / "k400" / "export" / "model.safetensors"))["head.weight"]
    rows = json.loads(MAP_710_TO_400.read_text())
    torch.testing.assert_close(head400, head710[rows])  # lr 0: exactly the mapped K710 head

    metrics = run(
        tiny_recipe(
            "tiny_finetune",
            tmp_path / "eval",
            "stage=eval",
            "data.synthetic.num_videos=8",
            "data.synthetic.num_classes=400",
            f"pretrained={tmp_path / 'k400' / 'export'}",
        )
    )
    assert metrics["num_videos"] == 8 and (tmp_path / "eval" / "test" / "predictions.jsonl").exists()
