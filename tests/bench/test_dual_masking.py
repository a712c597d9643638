"""bench/dual_masking.py --quick: every setting of the study trains through the demo's runs, its costs are counted,
the table is written, and a rerun trains nothing again (the full study: BENCHMARKS.md, "Dual masking in
miniature")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from videomae.training.run_dir import RunLock

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "dual_masking.py"
SETTINGS = (
    "none",
    "frame_50",
    "random_50",
    "running_cell_50_all_decoded",
    "running_cell_25",
    "running_cell_50",
    "running_cell_75",
    "running_cell_50_same_compute",
    "tube_75_running_cell_50",
    "scratch",
)


def study(out: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--quick", "--seeds", "0", "--output", str(out), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )


def test_quick_study_writes_every_setting_and_a_rerun_trains_nothing(tmp_path):
    out = tmp_path / "study"
    done = study(out)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(summary) == list(SETTINGS)
    for name in SETTINGS:
        result = json.loads((out / name / "seed0" / "results.json").read_text())
        assert result["setting"] == name and 0 <= result["acc1"] <= 100
        assert (out / name / "seed0" / "runs" / ("finetune_scratch" if name == "scratch" else "pretrain")).is_dir()
    flops = {name: entry["pretrain_flops_per_step"] for name, entry in summary.items() if name != "scratch"}
    # Decoded tokens per frame of 16 under the 90% tube (14 hidden): none 14, running cell 25/50/75% 12/8/4.
    assert flops["none"] > flops["running_cell_25"] > flops["running_cell_50"] > flops["running_cell_75"]
    assert flops["frame_50"] == flops["random_50"] == flops["running_cell_50_all_decoded"] == flops["running_cell_50"]
    assert flops["tube_75_running_cell_50"] > flops["running_cell_50"]  # the encoder sees 4 tokens a frame, not 2
    assert flops["running_cell_50_same_compute"] == flops["running_cell_50"]
    assert summary["running_cell_50"]["activation_mb"] < summary["none"]["activation_mb"]
    # The quick pretraining's 2 epochs become round(2 x 4681 / 3312) = 3 for the same compute as "none".
    steps = {name: summary[name]["pretrain_steps"] for name in ("none", "running_cell_50_same_compute")}
    assert steps["running_cell_50_same_compute"] * 2 == steps["none"] * 3
    config = json.loads(
        (out / "running_cell_50_all_decoded" / "seed0" / "runs" / "pretrain" / "config.json").read_text()
    )
    assert config["loss_on_all_decoded"] is True and config["data"]["mask_ratio"] == 0.9
    table = (out / "table.md").read_text()
    assert table.count("\n") == 2 + len(SETTINGS) and "| running cell 50% | 70.15 | 25.87 |" in table

    again = study(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "==" not in again.stderr  # every (setting, seed) was finished: nothing trained
    assert again.stdout == done.stdout


def test_unknown_settings_are_refused(tmp_path):
    done = study(tmp_path, "--only", "running_cell_60")
    assert done.returncode != 0 and "unknown settings ['running_cell_60']" in done.stderr


def test_a_cell_another_process_trains_is_left_to_it(tmp_path):
    cell = tmp_path / "none" / "seed0"
    cell.mkdir(parents=True)
    held = RunLock(str(cell))  # this test's process, alive: not stale
    held.acquire()
    try:
        done = study(tmp_path, "--only", "none")
    finally:
        held.release()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== none, seed 0: another process is training it, skipped" in done.stderr
    assert not (cell / "results.json").exists() and not (cell / "runs").exists()
