"""Exact resume: a run killed with SIGKILL and started again with the same command logs the same losses."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.slow  # runs the command line or several processes

ARGS = ["pretrain", "tiny", "max_steps=28", "save_every=6", "tensorboard=false", "log_every=1000"]


def count_lines(path) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def kill_when(cli, output_dir, ready) -> None:
    """Start the run, SIGKILL it as soon as `ready(output_dir)` holds (polled every millisecond)."""
    process = subprocess.Popen(
        cli.command(*ARGS, f"output_dir={output_dir}"),
        env=cli.env(),
        cwd=cli.repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not ready(output_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"


@pytest.fixture(scope="module")
def uninterrupted(cli, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("reference")
    cli.run(*ARGS, f"output_dir={output_dir}")
    return cli.read_losses(output_dir)


@pytest.mark.parametrize("moment", ["checkpoint_boundary", "mid_step"])
def test_sigkill_then_rerun_continues_exactly(cli, uninterrupted, tmp_path, moment):
    if moment == "checkpoint_boundary":  # just after step 12's checkpoint directory appears
        ready = lambda out: os.path.isdir(out / "checkpoints" / "step_00000012")  # noqa: E731
    else:  # between checkpoints, while steps 15+ run
        ready = lambda out: count_lines(out / "metrics.jsonl") >= 14  # noqa: E731
    kill_when(cli, tmp_path, ready)
    assert count_lines(tmp_path / "metrics.jsonl") < len(uninterrupted)
    cli.run(*ARGS, f"output_dir={tmp_path}")
    assert cli.read_losses(tmp_path) == uninterrupted  # exact equality, every step
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if n.startswith(".tmp")]
