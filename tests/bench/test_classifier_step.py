"""bench/classifier_step.py runs each implementation in a process of its own and ends its output with the JSON
record BENCHMARKS.md is built from; every implementation gets the same clip and targets.

Ours and transformers only: the official model code is not vendored, so `--impls official` cannot run here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPT = BENCH / "classifier_step.py"
sys.path.insert(0, str(BENCH))  # as `python bench/classifier_step.py` has it: the scripts import `common`

import classifier_step  # noqa: E402

TINY = [
    "--model",
    "vit_small_patch16_224",
    "--img-size",
    "32",
    "--num-frames",
    "4",
    "--num-classes",
    "10",
    "--batch",
    "2",
    "--steps",
    "2",
    "--warmup",
    "1",
    "--threads",
    "1",
]
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


def run(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_one_json_record_for_ours_with_step_time_and_memory(mode):
    record = run("--mode", mode)
    assert record["impl"] == "ours" and record["mode"] == mode and record["model"] == "vit_small_patch16_224"
    assert record["batch"] == 2 and record["clip"] == [4, 32, 32] and record["threads"] == 1
    assert len(record["step_s_all"]) == 2 and record["step_s_median"] > 0
    assert record["peak_rss_mb"] > 100  # import torch alone takes more
    assert record["page_faults_per_step"] >= 0 and record["kernel_s_per_step"] >= 0
    assert 0 <= record["others_cpu_share"] <= 1
    assert record["allocator"] == "glibc"
    if mode == "train":
        assert record["ac"] == "selective" and math.isfinite(record["loss_last"])
    else:
        assert record["ac"] is None and math.isfinite(record["logits_abs_mean"])
    assert [list(r) for r in record["rounds"]] == [["ours"]]


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="pip install transformers")
def test_transformers_side_by_side_gives_its_figures_and_ratios_per_round():
    record = run("--impls", "transformers", "--rounds", "2", "--steps", "1", "--warmup", "0")
    assert [list(r) for r in record["rounds"]] == [["ours", "transformers"]] * 2
    per_round = [r["transformers"]["step_s_median"] / r["ours"]["step_s_median"] for r in record["rounds"]]
    assert record["speedup_per_round_vs_transformers"] == [round(r, 3) for r in per_round]
    assert record["speedup_vs_transformers"] == pytest.approx(sum(per_round) / 2, abs=1e-3)  # median of two
    assert record["memory_ratio_vs_transformers"] == record["peak_rss_mb"] / record["transformers_peak_rss_mb"]
    assert record["transformers_step_s_median"] > 0 and isinstance(record["quiet_rounds"], list)
    assert "speedup_vs_transformers_quiet" in record


def test_every_implementation_gets_the_same_clip_and_targets():
    args = classifier_step.parse_args(TINY)
    ours, targets = classifier_step.inputs(args, "ours")
    theirs, their_targets = classifier_step.inputs(args, "transformers")
    assert ours.shape == (2, 3, 4, 32, 32) and theirs.shape == (2, 4, 3, 32, 32) and theirs.is_contiguous()
    assert torch.equal(theirs, ours.transpose(1, 2)) and torch.equal(targets, their_targets)
    assert torch.allclose(targets.sum(-1), torch.ones(2)) and targets.max().item() == pytest.approx(0.91)


def test_the_official_code_needs_its_checkout():
    with pytest.raises(SystemExit):
        classifier_step.parse_args([*TINY, "--impls", "official"])
