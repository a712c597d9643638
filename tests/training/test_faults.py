"""Faults a run meets, and what survives on disk: a second run on the same directory, SIGTERM and Ctrl-C, a killed
checkpoint write, a damaged or incomplete checkpoint, earlier work, another model, a read-only or full disk."""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from videomae.cli import build_parser
from videomae.errors import CheckpointError, ConfigError
from videomae.training import OutputDirError, load_recipe, run
from videomae.training.files import json_text
from videomae.training.run_dir import stale_reason

pytestmark = pytest.mark.slow  # runs the command line or several processes

# The whole tiny schedule (40 steps, well under a second each) and no periodic checkpoint: a signal after a few
# steps finds the run mid-epoch with nothing saved since its start.
ARGS = ["pretrain", "tiny", "save_every=1000", "tensorboard=false", "log_every=1"]  # a metrics line every step
SHORT = ["max_steps=4", "save_every=2"]  # in-process runs: checkpoints at steps 2 and 4


def count_lines(path) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0


def start(cli, command: list[str], output_dir):
    """The command in its own process group (as a terminal's Ctrl-C or SLURM reaches every process of a run)."""
    return subprocess.Popen(
        command + [f"output_dir={output_dir}"],
        env=cli.env(),
        cwd=cli.repo,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for_steps(process, output_dir, steps: int) -> None:
    deadline = time.monotonic() + 240
    while count_lines(output_dir / "metrics.jsonl") < steps:
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the run did not reach its first steps"
        time.sleep(0.002)


def run_failing(cli, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli.command(*args), env=cli.env(), cwd=cli.repo, capture_output=True, text=True, timeout=300, **kwargs
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *named: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    [error] = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert all(name in error for name in named), error


def files(root) -> dict[str, bytes]:
    """Every file under `root` with its bytes."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def uninterrupted(cli, tmp_path_factory) -> list:
    output_dir = tmp_path_factory.mktemp("reference")
    cli.run(*ARGS, f"output_dir={output_dir}")
    return cli.read_losses(output_dir)


@pytest.fixture(scope="module")
def four_steps(cli, tmp_path_factory):
    """A finished 4-step run (checkpoints at steps 2 and 4); tests work on copies (`earlier_run`)."""
    output_dir = tmp_path_factory.mktemp("four_steps")
    run(load_recipe("tiny", [f"output_dir={output_dir}", *cli.quiet, *SHORT]))
    return output_dir


@pytest.fixture
def earlier_run(four_steps, tmp_path):
    output_dir = tmp_path / "run"
    shutil.copytree(four_steps, output_dir)
    return output_dir


def tiny(output_dir, *overrides: str):
    return load_recipe("tiny", [f"output_dir={output_dir}", "tensorboard=false", "log_every=1000", *SHORT, *overrides])


# ---------------------------------------------------------------------------------------------------------------
# One run per output directory


def test_a_second_run_on_the_same_output_dir_refuses_and_names_the_first(cli, tmp_path):
    first = start(cli, cli.command(*ARGS, "epochs=1000"), tmp_path)  # runs until stopped
    try:
        wait_for_steps(first, tmp_path, 2)
        with pytest.raises(OutputDirError) as refused:
            run(tiny(tmp_path))
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.communicate(timeout=240)
    message = str(refused.value)
    assert f"pid {first.pid} on {socket.gethostname()}" in message and "\n" not in message
    assert first.returncode == 128 + signal.SIGTERM  # the first run went on undisturbed until stopped
    steps = count_lines(tmp_path / "metrics.jsonl")
    assert os.listdir(tmp_path / "checkpoints") == [f"step_{steps:08d}"]


def test_a_lock_left_by_an_ended_process_is_taken_over(earlier_run, capfd):
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    (earlier_run / "run.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": ended.pid}))
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    result = run(tiny(earlier_run, "max_steps=6"))
    assert result.step == 6 and len(result.losses) == 2
    assert f"process {ended.pid} has ended" in capfd.readouterr().err
    assert not (earlier_run / "run.lock").exists()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers  # put back after fit


def test_a_lock_is_stale_only_when_its_run_is_known_to_be_gone(monkeypatch):
    here, parent = socket.gethostname(), os.getppid()
    assert stale_reason({"host": here, "pid": parent, "since": time.time()}, 0) is None
    assert "another process" in stale_reason({"host": here, "pid": parent, "since": 0.0}, 0)  # pid reused
    assert stale_reason({"host": "elsewhere", "pid": parent}, 60) is None  # heartbeat fresh
    assert "heartbeat" in stale_reason({"host": "elsewhere", "pid": parent}, 3600)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert "requeued" in stale_reason({"host": "elsewhere", "slurm_job_id": "77", "slurm_restart_count": 0}, 0)
    assert stale_reason({"host": "elsewhere", "slurm_job_id": "77", "slurm_restart_count": 1}, 0) is None


# ---------------------------------------------------------------------------------------------------------------
# SIGTERM and Ctrl-C


@pytest.mark.parametrize("signum, workers", [(signal.SIGTERM, 0), (signal.SIGINT, 2)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_after_the_step_with_a_checkpoint_and_the_rerun_continues_exactly(
    cli, uninterrupted, tmp_path, signum, workers
):
    command = cli.command(*ARGS, f"data.num_workers={workers}")  # loader workers see the signal too, and ignore it
    process = start(cli, command, tmp_path)
    wait_for_steps(process, tmp_path, 3)
    os.killpg(process.pid, signum)
    stderr = process.communicate(timeout=240)[1]
    assert process.returncode == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stderr and f"stopped by {signal.Signals(signum).name} after step" in stderr
    steps = count_lines(tmp_path / "metrics.jsonl")
    assert steps < len(uninterrupted)
    assert os.listdir(tmp_path / "checkpoints") == [f"step_{steps:08d}"]  # the last finished step
    assert not (tmp_path / "run.lock").exists()
    cli.run(*command[3:], f"output_dir={tmp_path}")
    assert cli.read_losses(tmp_path) == uninterrupted  # exact, every step


def test_a_signal_to_one_process_stops_every_process_after_the_same_step(cli, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "videomae"]
    process = start(cli, torchrun + ARGS + ["batch_size=4"], tmp_path)
    wait_for_steps(process, tmp_path, 3)
    with open(f"/proc/{process.pid}/task/{process.pid}/children", encoding="ascii") as handle:
        workers = [int(pid) for pid in handle.read().split()]
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGTERM)  # one rank only: the other learns it through the per-step all-reduce
    stderr = process.communicate(timeout=240)[1]
    steps = count_lines(tmp_path / "metrics.jsonl")
    assert f"stopped by SIGTERM after step {steps}," in stderr, stderr[-3000:]
    assert os.listdir(tmp_path / "checkpoints") == [f"step_{steps:08d}"]
    assert not (tmp_path / "run.lock").exists()


# ---------------------------------------------------------------------------------------------------------------
# Killed writes, damaged checkpoints, earlier work


def test_leftovers_of_a_killed_checkpoint_write_are_removed_at_the_next_start(earlier_run):
    killed = earlier_run / "checkpoints" / ".tmp-step_00000006-4242"
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"\0" * 100)
    (earlier_run / ".tmp-export-4242").mkdir()
    (earlier_run / "checkpoints" / ".tmp-notes").mkdir()  # not one of our names: kept
    result = run(tiny(earlier_run, "max_steps=6"))
    assert len(result.losses) == 2
    assert sorted(os.listdir(earlier_run / "checkpoints")) == [".tmp-notes", "step_00000004", "step_00000006"]
    assert not (earlier_run / ".tmp-export-4242").exists()


def cut_in_half(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "model.safetensors cut": lambda step_dir: cut_in_half(step_dir / "model.safetensors"),
    "train_state.pt garbage": lambda step_dir: (step_dir / "train_state.pt").write_bytes(b"garbage" * 64),
    "meta.json cut": lambda step_dir: cut_in_half(step_dir / "meta.json"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_previous_one_resumed(earlier_run, capfd, damage):
    latest = earlier_run / "checkpoints" / "step_00000004"
    DAMAGE[damage](latest)
    damaged = files(latest)
    result = run(tiny(earlier_run))
    assert len(result.losses) == 2  # steps 3 and 4 again, from step 2
    checkpoints = earlier_run / "checkpoints"
    assert sorted(os.listdir(checkpoints)) == ["step_00000002", "step_00000004", "step_00000004.corrupt"]
    assert files(checkpoints / "step_00000004.corrupt") == damaged  # kept as it was
    err = capfd.readouterr().err
    assert "step_00000004.corrupt" in err and f"resumed from {checkpoints / 'step_00000002'}" in err


def test_checkpoints_without_meta_json_refuse_and_change_nothing(earlier_run):
    for step_dir in (earlier_run / "checkpoints").iterdir():
        (step_dir / "meta.json").unlink()
    before = files(earlier_run)
    with pytest.raises(CheckpointError, match="meta.json") as refused:
        run(tiny(earlier_run))
    assert "--fresh" in str(refused.value) and "\n" not in str(refused.value)
    assert files(earlier_run) == before  # metrics.jsonl untouched, nothing renamed, the lock released


def test_earlier_work_without_a_checkpoint_refuses_until_fresh_moves_it_aside(earlier_run):
    shutil.rmtree(earlier_run / "checkpoints")  # e.g. killed before its first checkpoint: only metrics.jsonl
    metrics = (earlier_run / "metrics.jsonl").read_text()
    with pytest.raises(OutputDirError, match="holds an earlier run .*metrics.jsonl.* --fresh"):
        run(tiny(earlier_run))
    assert (earlier_run / "metrics.jsonl").read_text() == metrics
    result = run(tiny(earlier_run, "max_steps=2"), fresh=True)
    assert result.step == 2 and len(result.losses) == 2  # from scratch
    [aside] = [path for path in earlier_run.parent.iterdir() if path.name.startswith("run.old-")]
    assert (aside / "metrics.jsonl").read_text() == metrics and not (aside / "run.lock").exists()
    assert build_parser().parse_args(["pretrain", "tiny", "--fresh"]).fresh


def test_resume_false_refuses_a_non_empty_output_dir(earlier_run):
    with pytest.raises(OutputDirError, match=f"resume=false but {earlier_run} is not empty"):
        run(tiny(earlier_run, "resume=false"))


def test_resuming_another_model_refuses_in_one_line(earlier_run):
    with pytest.raises(CheckpointError) as refused:
        run(tiny(earlier_run, "max_steps=6", "model_args.embed_dim=32"))
    message = str(refused.value)
    assert str(earlier_run / "checkpoints" / "step_00000004") in message and "\n" not in message
    assert "(embed_dim=64)" in message and "(embed_dim=32)" in message and "--fresh" in message
    assert sorted(os.listdir(earlier_run / "checkpoints")) == ["step_00000002", "step_00000004"]  # not damage


def test_a_malformed_run_config_is_a_one_line_error_naming_it(earlier_run):
    (earlier_run / "config.json").write_text("{ not json")
    with pytest.raises(ConfigError, match=f"{earlier_run / 'config.json'} is not a readable run config"):
        run(tiny(earlier_run, "max_steps=6"))


# ---------------------------------------------------------------------------------------------------------------
# Disk faults and JSON


def without_permission_override() -> None:
    """In the child: root loses the capabilities that write through file permissions (dropped from the bounding
    set, so the program it runs has a root without them), and a read-only folder is read-only to it too."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


def test_a_read_only_output_dir_is_a_one_line_error(cli, tmp_path):
    output_dir = tmp_path / "run"
    output_dir.mkdir(mode=0o555)
    privileged = os.access(output_dir, os.W_OK)  # root
    done = run_failing(
        cli,
        *ARGS,
        "max_steps=2",
        f"output_dir={output_dir}",
        preexec_fn=without_permission_override if privileged else None,
    )
    assert_one_line_error(done, str(output_dir / "run.lock"))


def limit_file_size() -> None:
    """In the child: writes past 64 KiB fail (EFBIG), as on a full disk, instead of killing it (SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))


def test_a_full_disk_stops_the_run_in_one_line_and_leaves_no_partial_checkpoint(cli, tmp_path):
    done = run_failing(cli, *ARGS, "max_steps=2", "save_every=1", f"output_dir={tmp_path}", preexec_fn=limit_file_size)
    assert_one_line_error(done, str(tmp_path / "checkpoints" / "step_00000001"))
    assert os.listdir(tmp_path / "checkpoints") == []  # no checkpoint a resume would pick, no temporary one
    assert count_lines(tmp_path / "metrics.jsonl") == 1 and not (tmp_path / "run.lock").exists()


def test_json_records_hold_null_for_non_finite_numbers():
    assert (
        json_text({"loss": math.nan, "grad_norm": [math.inf, 1.5], "step": 3})
        == '{"loss": null, "grad_norm": [null, 1.5], "step": 3}'
    )
