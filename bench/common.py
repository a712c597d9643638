"""What the bench scripts share: each implementation timed in a child process of its own under the same
preloaded C allocator, alternating rounds, the timing record (step times, peak RSS, page faults, how busy the
rest of the machine was), the official code's parameter groups and the timm stand-in it imports.

The scripts import this as `common` (`python bench/X.py` puts bench/ on sys.path).
"""

from __future__ import annotations

import argparse
import ctypes.util
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

# C allocators other than glibc's, preloaded into every implementation's process: library, apt package.
PRELOADED = {"jemalloc": ("jemalloc", "libjemalloc2"), "tcmalloc": ("tcmalloc_minimal", "libtcmalloc-minimal4")}
ALLOCATORS = ("glibc", *PRELOADED)
# A run during which other processes used more than this share of the machine's CPU time counts as disturbed.
DISTURBED = 0.05


# --------------------------------------------------------------------------------------------------
# Child processes, one per implementation and round
# --------------------------------------------------------------------------------------------------


def add_comparison_args(parser: argparse.ArgumentParser, ac_help: str) -> None:
    """The options of every side-by-side benchmark: our activation checkpointing, the allocator of every process,
    and the rounds that alternate the implementations."""
    parser.add_argument("--ac", choices=["none", "selective", "full"], default="selective", help=ac_help)
    parser.add_argument(
        "--allocator",
        choices=ALLOCATORS,
        default="glibc",
        help="the C allocator of every process: glibc's, or jemalloc or tcmalloc through LD_PRELOAD",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate the implementations this many times (per-round ratios cancel drift)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each round, wait up to this long for the rest of the machine to be idle",
    )
    parser.add_argument(
        "--extra-rounds",
        type=int,
        default=0,
        help="run up to this many more rounds while fewer than --rounds were quiet (all are reported)",
    )


def print_profile(step: Callable[[], object], rows: int = 25) -> None:
    """Run `step` once under torch.profiler and print where its CPU time goes (to stderr: stdout is the record)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows), file=sys.stderr)


def preload_env(allocator: str) -> dict:
    """The environment for a child process that runs under `allocator` (LD_PRELOAD of its library)."""
    env = dict(os.environ)
    if allocator == "glibc":
        return env
    library, package = PRELOADED[allocator]
    soname = ctypes.util.find_library(library)  # e.g. libjemalloc.so.2, from the ldconfig cache
    if soname is None:
        raise SystemExit(f"{allocator} is not installed: apt-get install {package}")
    env["LD_PRELOAD"] = " ".join(filter(None, [soname, env.get("LD_PRELOAD")]))
    return env


def is_loaded(allocator: str) -> bool:
    """Whether this process has the allocator's library mapped (Linux)."""
    with open("/proc/self/maps") as maps:
        return f"lib{PRELOADED[allocator][0]}.so" in maps.read()


def require_allocator(allocator: str, impl: str) -> None:
    """In a child: stop unless the allocator the parent asked for is the one this process runs under."""
    if allocator != "glibc" and not is_loaded(allocator):
        raise SystemExit(f"the {impl} run does not have {allocator} loaded: LD_PRELOAD did not take")


def run_child(script: str, argv: list[str], impl: str, allocator: str) -> dict:
    """Run `script argv --impl impl` in a fresh process under `allocator`; its last stdout line is its record."""
    cmd = [sys.executable, script, *argv, "--impl", impl]
    done = subprocess.run(cmd, capture_output=True, text=True, env=preload_env(allocator))
    sys.stderr.write(done.stderr)
    if done.returncode:
        raise SystemExit(f"{impl} run failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_until_quiet(max_wait_s: float, window_s: float = 10.0) -> None:
    """Wait, at most `max_wait_s`, for a `window_s` in which other processes use under DISTURBED of the CPUs."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        busy, start = _machine_busy_s(), time.perf_counter()
        time.sleep(window_s)  # this process sleeps: all CPU time used meanwhile is other processes'
        if (_machine_busy_s() - busy) / ((time.perf_counter() - start) * os.cpu_count()) < DISTURBED:
            return


def side_by_side(script: str, argv: list[str], args, impls: list[str], run_one: Callable) -> dict[str, list[dict]]:
    """In a child process (`--impl`), time that implementation, print its record and return {}; otherwise run
    every implementation of `impls` in a child of its own under `args.allocator`, alternating `args.rounds` rounds
    when there is more than one to compare."""
    if args.impl:
        print(json.dumps(run_one(args)))
        return {}
    compared = len(impls) > 1
    return alternate(
        impls,
        args.rounds if compared else 1,
        lambda impl: run_child(script, argv, impl, args.allocator),
        args.wait_quiet,
        args.extra_rounds if compared else 0,
    )


def alternate(
    impls: list[str], rounds: int, run: Callable[[str], dict], wait_quiet_s: float = 0.0, extra_rounds: int = 0
) -> dict[str, list[dict]]:
    """`run(impl)` for every implementation, `rounds` times in turn: a slow spell of the machine (they last
    minutes) then hits every implementation of a round alike, and per-round ratios cancel it.

    With `wait_quiet_s`, each round first waits (that long at most) for the rest of the machine to be idle.
    A round that other processes disturbed anyway is kept, and up to `extra_rounds` more rounds run until
    `rounds` of them were quiet.
    """
    runs = {impl: [] for impl in impls}
    for _ in range(rounds + extra_rounds):
        if len(quiet_rounds(runs)) >= rounds:
            break
        if wait_quiet_s:
            wait_until_quiet(wait_quiet_s)
        for impl in impls:
            runs[impl].append(run(impl))
    return runs


def combine(runs: list[dict]) -> dict:
    """One record for several runs of the same implementation: median over all steps, max of the peaks."""
    if len(runs) == 1:
        return runs[0]  # its median from the unrounded times
    steps = [t for run in runs for t in run["step_s_all"]]
    return {
        **runs[0],
        "step_s_median": statistics.median(steps),
        "step_s_all": steps,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
    }


def speedups(other: list[dict], ours: list[dict]) -> dict:
    """The other implementation's median step over ours: per round (runs next to each other in time), their
    median, and the median over the quiet rounds only (no run of the round disturbed)."""
    per_round = [round(o["step_s_median"] / u["step_s_median"], 3) for o, u in zip(other, ours)]
    quiet = [
        r for r, o, u in zip(per_round, other, ours) if max(o["others_cpu_share"], u["others_cpu_share"]) <= DISTURBED
    ]
    return {
        "per_round": per_round,
        "median": statistics.median(per_round),
        "quiet_median": statistics.median(quiet) if quiet else None,
    }


def quiet_rounds(runs: dict[str, list[dict]]) -> list[int]:
    """The rounds (from 0) in which no run was disturbed by other processes."""
    return [
        i
        for i, records in enumerate(zip(*runs.values()))
        if all(record["others_cpu_share"] <= DISTURBED for record in records)
    ]


# --------------------------------------------------------------------------------------------------
# Timing in the child
# --------------------------------------------------------------------------------------------------


def synchronized_time(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def peak_memory_mb(device: str) -> dict:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (/proc/stat: user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def time_steps(step: Callable[[], object], warmup: int, steps: int, device: str = "cpu") -> tuple[dict, object]:
    """Call `step` `warmup` times, then `steps` timed times; return the timing record and the last result.

    Besides the times: page faults and kernel CPU time per step (what memory the OS hands out afresh costs),
    and `others_cpu_share`, the share of the machine's CPU time that other processes used meanwhile (0 on an
    idle machine; 0.5 = one of two cores busy elsewhere): a round far off the others shows up here.
    """
    for _ in range(warmup):
        step()
    times = []
    before, busy_before, start = resource.getrusage(resource.RUSAGE_SELF), _machine_busy_s(), time.perf_counter()
    for _ in range(steps):
        begin = synchronized_time(device)
        result = step()
        times.append(synchronized_time(device) - begin)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - start
    busy = _machine_busy_s() - busy_before
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "step_s_median": statistics.median(times),
        "step_s_all": [round(t, 3) for t in times],
        "page_faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
        "kernel_s_per_step": (after.ru_stime - before.ru_stime) / steps,
        "others_cpu_share": round(max(busy - own, 0.0) / (wall * os.cpu_count()), 3),
    }, result


# --------------------------------------------------------------------------------------------------
# The official code (a checkout of OpenGVLab/VideoMAEv2, imported at run time, never vendored)
# --------------------------------------------------------------------------------------------------


def install_timm_stand_in() -> None:
    """The official model files import four helpers from timm 0.4.12; provide them without timm."""

    def drop_path(x, drop_prob=0.0, training=False):
        if drop_prob == 0.0 or not training:
            return x
        keep = 1 - drop_prob
        return x.div(keep) * x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)

    layers = types.ModuleType("timm.models.layers")
    layers.drop_path = drop_path
    layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    layers.trunc_normal_ = torch.nn.init.trunc_normal_
    registry = types.ModuleType("timm.models.registry")
    registry.register_model = lambda fn: fn
    models = types.ModuleType("timm.models")
    models.layers, models.registry = layers, registry
    timm = types.ModuleType("timm")
    timm.models = models
    sys.modules.update(
        {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry}
    )


def import_official(src: Path, module: str) -> types.ModuleType:
    """`models.modeling_pretrain` or `models.modeling_finetune` from the official checkout at `src`."""
    install_timm_stand_in()
    sys.path.insert(0, str(src))
    return importlib.import_module(f"models.{module}")


def param_groups(model: torch.nn.Module, weight_decay: float = 0.05) -> list[dict]:
    """The official runs' grouping: no decay for 1-D tensors, biases and mask_token (layer decay only scales
    each group's LR, which a fixed-LR benchmark does not need)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim <= 1 or name.endswith(".bias") or name == "mask_token" else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
