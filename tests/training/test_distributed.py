"""Two gloo processes with per-process batch 4 log the same losses as one process with batch 8."""

from __future__ import annotations

import subprocess
import sys

import pytest

ARGS = ["pretrain", "tiny", "max_steps=6", "save_every=3", "tensorboard=false", "log_every=1000"]


def test_two_processes_match_one(cli, tmp_path):
    cli.run(*ARGS, "batch_size=8", f"output_dir={tmp_path / 'one'}")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "videomae"]
    done = subprocess.run(
        [*torchrun, *ARGS, "batch_size=4", f"output_dir={tmp_path / 'two'}"],
        env=cli.env(1),
        cwd=cli.repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x 2 processes" in done.stderr
    one, two = cli.read_losses(tmp_path / "one"), cli.read_losses(tmp_path / "two")
    assert len(one) == len(two) == 6
    assert two == pytest.approx(one, rel=1e-5)  # same samples, same masks; only the reduction order differs


def read_records(output_dir) -> list[dict]:
    import json

    with open(output_dir / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_a_run_resumes_on_another_number_of_processes_in_samples(cli, tmp_path):
    """2 processes (global batch 4) stop after 3 steps = 12 samples; 1 process (global batch 2) continues at sample
    12 of the same epoch, step 6 of its own (twice as long) schedule, at the LR an uninterrupted 1-process run has
    there. docs/training.md, "Checkpoints and resume"."""
    base = ["pretrain", "tiny", "batch_size=2", "tensorboard=false", "log_every=1"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "videomae"]
    run = tmp_path / "run"
    done = subprocess.run(
        [*torchrun, *base, "max_steps=3", f"output_dir={run}"],
        env=cli.env(1),
        cwd=cli.repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r["samples"] for r in read_records(run)] == [4, 8, 12]
    resumed = cli.run(*base, "max_steps=8", f"output_dir={run}")
    assert (
        "the global batch changed from 4 to 2 videos: continuing epoch 0 after its first 12 samples, at step 6"
        in resumed.stderr
    )
    records = read_records(run)
    assert [(r["step"], r["samples"]) for r in records[3:]] == [(7, 14), (8, 16)]
    cli.run(*base, "max_steps=8", f"output_dir={tmp_path / 'alone'}")
    alone = read_records(tmp_path / "alone")
    assert [r["lr"] for r in records[3:]] == pytest.approx([r["lr"] for r in alone[6:8]], rel=1e-12)
