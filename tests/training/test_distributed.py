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
