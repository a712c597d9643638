"""Helpers for the training tests: tiny recipes in temporary folders, subprocess runs, metrics files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUIET = ["tensorboard=false", "log_every=1000"]


def read_losses(output_dir) -> list:
    with open(Path(output_dir) / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)["loss"] for line in handle]


def cli_env(threads: int = 1) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def videomae_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "videomae", *args]


def run_cli(*args: str, threads: int = 1) -> subprocess.CompletedProcess:
    done = subprocess.run(
        videomae_command(*args), env=cli_env(threads), cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def tiny_recipe():
    """`tiny_recipe(name, tmp_dir, *overrides)` -> TrainConfig writing to tmp_dir, quiet."""
    from videomae.training import load_recipe

    def make(name: str, output_dir, *overrides: str):
        return load_recipe(name, [f"output_dir={output_dir}", *QUIET, *overrides])

    return make


@pytest.fixture(scope="session")
def cli():
    """Subprocess helpers (test modules cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        run=run_cli, command=videomae_command, env=cli_env, read_losses=read_losses, repo=REPO, quiet=QUIET
    )
