"""bench/gpu_check.py --dry: every section a GPU session runs, on the CPU with the tiny model and gloo, writing the
same JSON record and summary (compilation is left out of the dry run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.py"

pytestmark = pytest.mark.data_stack  # the engine sections build the data pipeline


def test_the_dry_run_passes_every_section_it_can_run_here(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = record["sections"]
    assert record["dry"] and list(sections) == [
        "environment",
        "flash_attention",
        "train_steps",
        "sync_audit",
        "engine_runs",
        "distributed",
        "inference",
        "data_loader",
        "pretrain_step_mfu",
        "train_steps_compiled",
    ]
    expected_skips = {"train_steps_compiled", "data_loader"} | (
        {"inference"} if sections["environment"]["result"]["dependencies"]["av"] is None else set()
    )
    assert {name for name, s in sections.items() if s["status"] == "skipped"} == expected_skips
    assert all(s["status"] == "ok" for name, s in sections.items() if name not in expected_skips)
    results = {name: s.get("result") for name, s in sections.items()}
    assert all(r["finite"] and r["max_abs_diff_vs_default"] < 0.05 for r in results["flash_attention"].values())
    assert set(results["train_steps"]) == {"bf16_ac-none", "bf16_ac-selective", "fp32_ac-none", "fp32_ac-selective"}
    assert all(r["finite"] for r in results["train_steps"].values())
    for run in results["engine_runs"].values():  # a resume continues exactly on the CPU
        assert run["resume_max_relative_difference"] == 0 and run["ema_export"] and run["eval_views"] == 32
    assert results["distributed"]["fsdp"]["sharded"] and results["distributed"]["fsdp"]["plain_weights_equal"]
    assert all(results["distributed"][kind]["weights_equal"] for kind in ("fsdp", "ddp"))
    if results["inference"]:
        assert results["inference"]["predict_equal"] and results["inference"]["extract_equal"]
    assert results["pretrain_step_mfu"]["mfu"] > 0
    summary = (tmp_path / "gpu_check.txt").read_text().splitlines()
    assert summary[0].startswith("gpu_check --dry on cpu") and len(summary) == 1 + len(sections)
