"""`videomae demo --quick` end to end, and Ctrl-C (the full demo is measured by hand: README, docs/usage.md; what
a rerun does with an earlier folder: tests/demo/test_run.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from PIL import Image

from tests.apps.fixtures import assert_user_error, run_cli

# Steps of the quick demo: epochs x (clips // batch size).
QUICK_STEPS = {"pretrain": 2 * (128 // 32), "finetune_pretrained": 2 * (24 // 8), "finetune_scratch": 2 * (24 // 8)}


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_engine_runs(out, steps: dict[str, int]) -> None:
    """Every stage trained through the engine: its run directory holds the config, a metrics line per step, the
    export (with labels for the classifiers) and, for the classifiers, the engine's test."""
    for stage, count in steps.items():
        run = out / "runs" / stage
        config = json.loads((run / "config.json").read_text())
        assert config["stage"] == ("pretrain" if stage == "pretrain" else "finetune")
        assert [record["step"] for record in read_lines(run / "metrics.jsonl")] == list(range(1, count + 1))
        assert (run / "export" / "model.safetensors").is_file() and (run / "export" / "preprocessing.json").is_file()
        assert (run / "checkpoints" / f"step_{count:08d}").is_dir()
        assert (run / "export" / "labels.txt").is_file() == (stage != "pretrain")
        assert (run / "test" / "metrics.json").is_file() == (stage != "pretrain")
        assert not (run / "run.lock").exists()
    assert json.loads((out / "runs" / "finetune_pretrained" / "config.json").read_text())["pretrained"] == str(
        out / "runs" / "pretrain"
    )
    assert not (out / "run.lock").exists()


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
    assert len(list((out / "samples").glob("*/*.mp4"))) == 8
    assert_engine_runs(out, QUICK_STEPS)
    assert {name: run["steps"] for name, run in results["runs"].items()} == QUICK_STEPS
    tested = json.loads((out / "runs" / "finetune_scratch" / "test" / "metrics.json").read_text())
    assert tested["acc1"] == results["accuracy_scratch"]

    # The commands the report suggests, as written there (run directories are checkpoints; their exports
    # carry the clip geometry, the test views and the masks).
    predicted = run_cli("predict", str(out / "samples"), "--checkpoint", str(out / "runs" / "finetune_pretrained"))
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.count("(1 views)") == 8
    picture = tmp_path / "reconstruction.png"
    clip = next((out / "samples" / "move_left").glob("*.mp4"))
    shown = run_cli("visualize", str(clip), "--checkpoint", str(out / "runs" / "pretrain"), "--output", str(picture))
    assert shown.returncode == 0, shown.stderr
    assert "tube 0.75, decoder running_cell 0.5" in shown.stderr and Image.open(picture).size[0] > 100


def test_ctrl_c_leaves_a_consistent_folder_that_a_rerun_completes(tmp_path):
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "videomae", "demo", "--quick", "--pretrain-epochs", "10", "--output", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = out / "runs" / "pretrain" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=240)[1]
    assert process.returncode == 128 + signal.SIGINT, stderr[-3000:]
    assert "Traceback" not in stderr and "stopped by SIGINT after step" in stderr
    stopped = len(metrics.read_text().splitlines())
    assert stopped < 40
    assert sorted(os.listdir(out / "runs" / "pretrain" / "checkpoints"))[-1] == f"step_{stopped:08d}"
    assert sorted(os.listdir(out)) == ["runs"] and sorted(os.listdir(out / "runs")) == ["demo.json", "pretrain"]

    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["runs"]["pretrain"]["resumed_from_step"] == stopped
    assert_engine_runs(out, dict(QUICK_STEPS, pretrain=40))


def test_demo_rejects_bad_arguments(tmp_path):
    result = run_cli("demo", "--quick", "--pretrain-epochs", "0", "--output", str(tmp_path))
    assert_user_error(result, "--pretrain-epochs must be at least 1")
