"""What a rerun of the demo does with the folder an earlier one left (in-process quick demos)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time

import pytest

from videomae.demo.run import DemoConfig, run_demo
from videomae.training.files import OutputDirError

STEPS = {"pretrain": 8, "finetune_pretrained": 6, "finetune_scratch": 6}  # the quick demo's


def quick(seed: int = 0) -> DemoConfig:
    return dataclasses.replace(DemoConfig.quick(seed), threads=0)  # leaves the test process's threads alone


def resumed_from(results: dict) -> dict[str, int]:
    return {name: run["resumed_from_step"] for name, run in results["runs"].items()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A folder holding a finished quick demo, and its results."""
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(quick(), str(out), log=lambda line: None)


def test_a_rerun_with_the_same_settings_keeps_finished_runs(finished, tmp_path):
    out = tmp_path / "demo"
    shutil.copytree(finished[0], out)
    again = run_demo(quick(), str(out), log=lambda line: None)
    assert resumed_from(again) == STEPS  # nothing trained again
    assert again["accuracy_pretrained"] == finished[1]["accuracy_pretrained"]
    assert again["final_loss"] == finished[1]["final_loss"]  # from the runs' metrics.jsonl


def test_a_run_without_a_checkpoint_starts_over(finished, tmp_path):
    out = tmp_path / "demo"
    shutil.copytree(finished[0], out)
    shutil.rmtree(out / "runs" / "finetune_scratch" / "checkpoints")  # as if killed before its first checkpoint
    again = run_demo(quick(), str(out), log=lambda line: None)
    assert resumed_from(again) == dict(STEPS, finetune_scratch=0)
    assert again["accuracy_scratch"] == finished[1]["accuracy_scratch"]  # the same run, trained again


def test_other_settings_replace_the_earlier_demo(finished, tmp_path):
    out = tmp_path / "demo"
    shutil.copytree(finished[0], out)
    lines = []
    other = run_demo(quick(seed=1), str(out), log=lines.append)
    assert resumed_from(other) == dict.fromkeys(STEPS, 0)
    assert any("holds a demo with other settings" in line for line in lines)
    assert sum(1 for _ in open(out / "runs" / "pretrain" / "metrics.jsonl")) == STEPS["pretrain"]


def test_a_second_demo_on_a_folder_in_use_refuses(tmp_path):
    running = {"host": socket.gethostname(), "pid": os.getppid(), "since": time.time()}  # a live process
    (tmp_path / "run.lock").write_text(json.dumps(running))
    with pytest.raises(OutputDirError, match="in use by another run"):
        run_demo(quick(), str(tmp_path), log=lambda line: None)
    assert os.listdir(tmp_path) == ["run.lock"]  # nothing touched
