"""`videomae pretrain|finetune|probe|distill|eval RECIPE key=value ...`."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.slow
def test_every_training_command_end_to_end_in_a_subprocess(tmp_path):
    """pretrain -> finetune -> probe, distill and eval, each as `python -m videomae ...` in its own process."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    small = ["max_steps=2", "tensorboard=false", "data.synthetic.num_videos=16", "test_at_end=false", "val_every=0"]

    def videomae(*args):
        done = subprocess.run(
            [sys.executable, "-m", "videomae", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        return done

    videomae("pretrain", "tiny", f"output_dir={tmp_path / 'pt'}", *small)
    videomae(
        "finetune", "tiny_finetune", f"output_dir={tmp_path / 'ft'}", f"pretrained={tmp_path / 'pt' / 'export'}", *small
    )
    videomae(
        "probe", "tiny_probe", f"output_dir={tmp_path / 'probe'}", f"pretrained={tmp_path / 'pt' / 'export'}", *small
    )
    videomae(
        "distill",
        "tiny_distill",
        f"output_dir={tmp_path / 'kd'}",
        f"distill.teacher={tmp_path / 'ft' / 'export'}",
        *small,
    )
    videomae(
        "eval",
        "tiny_finetune",
        "stage=eval",
        f"output_dir={tmp_path / 'eval'}",
        f"pretrained={tmp_path / 'ft' / 'export'}",
        "data.synthetic.num_videos=8",
        "tensorboard=false",
    )
    for run in ("pt", "ft", "probe", "kd"):
        assert len((tmp_path / run / "metrics.jsonl").read_text().splitlines()) == 2, run
    assert (tmp_path / "eval").exists()


def test_eval_tests_clips_as_the_model_was_trained_unless_told_otherwise(tmp_path, capsys):
    small = ["tensorboard=false", "log_every=1000", "data.synthetic.num_videos=8", "test_at_end=false", "val_every=0"]
    assert (
        main(
            [
                "finetune",
                "tiny_finetune",
                f"output_dir={tmp_path / 'ft'}",
                "max_steps=1",
                "data.sampling_rate=3",
                "data.test_num_crop=1",
                *small,
            ]
        )
        == 0
    )
    assert (
        main(["eval", "tiny_finetune", f"output_dir={tmp_path / 'eval'}", f"pretrained={tmp_path / 'ft'}", *small]) == 0
    )
    data = json.loads((tmp_path / "eval" / "config.json").read_text())["data"]
    assert (data["sampling_rate"], data["test_num_crop"]) == (3, 1)  # the recipe says 2 and 2
    assert "differs from" not in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "tiny_finetune",
                f"output_dir={tmp_path / 'eval2'}",
                f"pretrained={tmp_path / 'ft'}",
                "data.sampling_rate=2",
                *small,
            ]
        )
        == 0
    )
    assert "data.sampling_rate=2 differs from the 3 the model was trained with" in capsys.readouterr().err
    assert main(["eval", "tiny_finetune", f"output_dir={tmp_path / 'eval3'}", *small]) == 2
    assert "the eval stage tests a trained classifier: set pretrained=" in capsys.readouterr().err
