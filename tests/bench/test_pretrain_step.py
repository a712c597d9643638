"""bench/pretrain_step.py runs and ends its output with the JSON record BENCHMARKS.md is built from.

Only our side: the official model code is not vendored, so `--official-src` cannot run here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "pretrain_step.py"


def test_one_json_record_with_step_time_and_peak_memory():
    args = ["--model", "pretrain_videomae_small_patch16_224", "--batch", "1", "--steps", "2", "--warmup", "0",
            "--threads", "1"]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["impl"] == "ours" and record["model"] == "pretrain_videomae_small_patch16_224"
    assert len(record["step_s_all"]) == 2 and record["step_s_median"] > 0
    assert record["peak_rss_mb"] > 100  # a ViT-S with AdamW state cannot fit in less
    assert math.isfinite(record["loss_last"])
    assert record["mmap_threshold_mb"] == (2 if record["thp_tensors"] else 0)  # the engine's auto policy
