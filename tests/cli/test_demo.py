"""`videomae demo --quick` end to end (the full demo is measured by hand: README, docs/usage.md)."""

from __future__ import annotations

import json

from PIL import Image

from tests.apps.fixtures import assert_user_error, run_cli


def test_quick_demo_writes_every_output(tmp_path):
    out = tmp_path / "demo"
    result = run_cli("demo", "--quick", "--output", str(out), timeout=240)
    assert result.returncode == 0, result.stderr
    assert "pretrained" in result.stdout and "scratch" in result.stdout
    results = json.loads((out / "results.json").read_text())
    for key in ("accuracy_pretrained", "accuracy_scratch", "gain", "seconds", "config"):
        assert key in results
    assert 0 <= results["accuracy_pretrained"] <= 100 and 0 <= results["accuracy_scratch"] <= 100
    for picture in ("pretrain_loss.png", "finetune_loss.png", "reconstructions.png"):
        assert Image.open(out / picture).size[0] > 100
    assert (out / "report.md").read_text().startswith("# VideoMAE V2 demo")
    assert (out / "finetuned_pretrained" / "labels.txt").is_file()
    assert len(list((out / "samples").glob("*/*.mp4"))) == 8

    predicted = run_cli(
        "predict",
        str(out / "samples"),
        "--checkpoint",
        str(out / "finetuned_pretrained"),
        "--clips",
        "1",
        "--crops",
        "1",
        "--sampling-rate",
        "1",
        "--top-k",
        "1",
    )
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.count("(1 views)") == 8


def test_demo_rejects_bad_arguments(tmp_path):
    result = run_cli("demo", "--quick", "--pretrain-epochs", "0", "--output", str(tmp_path))
    assert_user_error(result, "--pretrain-epochs must be at least 1")
