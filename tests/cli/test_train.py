"""`videomae pretrain|finetune|probe|distill|eval RECIPE key=value ...`."""

from __future__ import annotations

import json

from videomae.cli import main


def test_pretrain_command_runs_the_tiny_recipe(tmp_path, capsys):
    code = main(["pretrain", "tiny", f"output_dir={tmp_path}", "max_steps=3", "tensorboard=false"])
    assert code == 0
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    err = capsys.readouterr().err
    assert "global batch 8 videos/process x 1 accumulation x 1 processes x 1 views = 8 clips" in err
    assert json.loads((tmp_path / "config.json").read_text())["max_steps"] == 3


def test_stage_mismatch_and_bad_override_exit_2_without_traceback(capsys):
    assert main(["finetune", "tiny"]) == 2
    assert "is a pretrain recipe" in capsys.readouterr().err
    assert main(["pretrain", "tiny", "optim.nope=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'optim.nope'" in err and "Traceback" not in err
