"""Several gloo processes on the CPU: the same losses as one process (DDP and FSDP2), sharded checkpoints that load
with another process count, and errors met by one process that stop every process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # runs the command line or several processes

ARGS = ["pretrain", "tiny", "max_steps=6", "save_every=3", "tensorboard=false", "log_every=1000"]
WORKER = str(Path(__file__).with_name("dist_worker.py"))


def torchrun(cli, processes: int, *command: str) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    done = subprocess.run(
        [*launcher, *command], env=cli.env(1), cwd=cli.repo, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def one_process(cli, tmp_path_factory):
    """Losses of the tiny pretraining run in one process, batch 8."""
    output_dir = tmp_path_factory.mktemp("one")
    cli.run(*ARGS, "batch_size=8", f"output_dir={output_dir}")
    return cli.read_losses(output_dir)


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_match_one(cli, one_process, tmp_path, parallel):
    done = torchrun(cli, 2, "-m", "videomae", *ARGS, "batch_size=4", f"parallel={parallel}", f"output_dir={tmp_path}")
    assert "x 2 processes" in done.stderr
    two = cli.read_losses(tmp_path)
    assert len(one_process) == len(two) == 6
    assert two == pytest.approx(one_process, rel=1e-5)  # same samples, same masks; only the reduction order differs
    if parallel == "ddp":
        return
    # FSDP: each process wrote its part of every checkpoint; one process resumes from step 3's parts
    newest = tmp_path / "checkpoints" / "step_00000006"
    assert sorted(os.listdir(newest / "sharded")) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    shutil.rmtree(newest)
    resumed = cli.run(*ARGS, "batch_size=8", f"output_dir={tmp_path}")
    assert "(step 3)" in resumed.stderr
    assert cli.read_losses(tmp_path) == pytest.approx(one_process, rel=1e-5)


def read_dump(path) -> dict:
    return torch.load(path, weights_only=True)


def assert_same_state(loaded: dict, saved: dict) -> None:
    assert loaded["model"].keys() == saved["model"].keys()
    for name, tensor in saved["model"].items():
        assert tensor.dtype == torch.float32
        assert torch.equal(loaded["model"][name], tensor), name
    assert loaded["optimizer"].keys() == saved["optimizer"].keys()
    for name, state in saved["optimizer"].items():
        assert state.keys() == {"step", "exp_avg", "exp_avg_sq"}
        for key, tensor in state.items():
            assert torch.equal(loaded["optimizer"][name][key], tensor), (name, key)


def test_a_sharded_checkpoint_of_two_processes_loads_in_one(cli, tmp_path):
    """FSDP2 over 2 processes (bf16 parameters in compute, fp32 masters) writes its shards; one plain process
    loads the same weights and AdamW state."""
    run = str(tmp_path / "run")
    torchrun(cli, 2, WORKER, "save", run, str(tmp_path / "saved.pt"), "--fsdp", "--bf16")
    done = torchrun(cli, 1, WORKER, "load", run, str(tmp_path / "loaded.pt"))
    assert "at step 1" in done.stdout
    assert_same_state(read_dump(tmp_path / "loaded.pt"), read_dump(tmp_path / "saved.pt.1"))


def test_a_sharded_checkpoint_of_one_process_loads_in_two_and_a_damaged_one_is_set_aside(cli, tmp_path):
    run = tmp_path / "run"
    torchrun(cli, 1, WORKER, "save", str(run), str(tmp_path / "saved.pt"), "--fsdp", "--steps", "2")
    newest = run / "checkpoints" / "step_00000002"
    shard = newest / "sharded" / "__0_0.distcp"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    done = torchrun(cli, 2, WORKER, "load", str(run), str(tmp_path / "loaded.pt"), "--fsdp")
    assert "at step 1" in done.stdout and "checkpoint damaged" in done.stderr
    assert not newest.exists() and (run / "checkpoints" / "step_00000002.corrupt").is_dir()
    assert_same_state(read_dump(tmp_path / "loaded.pt"), read_dump(tmp_path / "saved.pt.1"))


def test_an_error_on_one_process_is_raised_on_every_process(cli, tmp_path):
    """Nothing hangs: each check fails on one process and both processes leave it with an error."""
    torchrun(cli, 2, WORKER, "collectives", str(tmp_path / "run"), str(tmp_path / "outcome"))
    outcomes = [json.loads((tmp_path / f"outcome.{rank}").read_text()) for rank in (0, 1)]
    for outcome in outcomes:
        assert outcome["everywhere"] == "ConfigError: rank 1 refuses"
        assert outcome["on_main"] == "ConfigError: rank 0 refuses"
        assert outcome["nonfinite_shard"].startswith("DivergenceError: weights are not finite")
    assert outcomes[0]["from_main"] == "OSError: disk gone"
    assert outcomes[1]["from_main"].startswith("RuntimeError: process 0 failed: OSError")
    assert not (tmp_path / "run" / "checkpoints").exists() or not os.listdir(tmp_path / "run" / "checkpoints")


def test_the_collective_timeout_comes_from_the_config_else_the_environment(monkeypatch):
    from videomae.errors import ConfigError
    from videomae.training import load_recipe
    from videomae.training.distributed import TIMEOUT_ENV, collective_timeout_s

    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert collective_timeout_s() == 1800
    monkeypatch.setenv(TIMEOUT_ENV, "120")
    assert collective_timeout_s() == 120 and collective_timeout_s(60.0) == 60
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match=TIMEOUT_ENV):
        collective_timeout_s()
    assert load_recipe("tiny", ["dist_timeout_s=3600"]).dist_timeout_s == 3600
    with pytest.raises(ConfigError, match="dist_timeout_s must be"):
        load_recipe("tiny", ["dist_timeout_s=0"])


class Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_planted_checkpoint_index_is_refused_without_running_it(tmp_path):
    """DCP's .metadata is a pickle: only DCP's index types are unpickled from it."""
    import pickle

    from videomae.errors import CheckpointError
    from videomae.training.state import read_dcp_index

    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / ".metadata").write_bytes(pickle.dumps(Planted(tmp_path / "ran")))
    with pytest.raises(CheckpointError, match="names posix.system"):
        read_dcp_index(str(folder))
    assert not (tmp_path / "ran").exists()


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
