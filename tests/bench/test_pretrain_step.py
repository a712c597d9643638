"""bench/pretrain_step.py runs and ends its output with the JSON record BENCHMARKS.md is built from; its model
FLOPs (for MFU) match the count from the layer shapes.

Only our side: the official model code is not vendored, so `--official-src` cannot run here.
"""

from __future__ import annotations

import ctypes.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPT = BENCH / "pretrain_step.py"
sys.path.insert(0, str(BENCH))  # as `python bench/pretrain_step.py` has it: the scripts import `common`

import common  # noqa: E402
import pretrain_step  # noqa: E402


def vit_s_step_flops(
    visible=160,
    decoded=944,
    predicted=784,
    dim=384,
    depth=12,
    dec_dim=192,
    dec_depth=4,
    head_dim=64,
    patch=2 * 16 * 16 * 3,
) -> int:
    """Model FLOPs (2·m·k·n per matrix product) of one ViT-S 16x224 clip, tube 90% and running cell 50%."""

    def mm(m, k, n):
        return 2 * m * k * n

    def block(rows, queries, keys, d):  # qkv on every row; attention, proj and MLP on the query rows
        attention = 2 * mm(queries, head_dim, keys) * (d // head_dim)  # q·kᵀ and attn·v, per head
        return mm(rows, d, 3 * d) + attention + mm(queries, d, d) + mm(queries, d, 4 * d) + mm(queries, 4 * d, d)

    embed = mm(visible, patch, dim)
    encoder = depth * block(visible, visible, visible, dim)
    decoder = (dec_depth - 1) * block(decoded, decoded, decoded, dec_dim) + block(decoded, predicted, decoded, dec_dim)
    forward = embed + encoder + mm(visible, dim, dec_dim) + decoder + mm(predicted, dec_dim, patch)
    return 3 * forward - embed  # backward = 2x forward, less the patch embedding's input gradient (the clip)


def test_one_json_record_with_step_time_memory_and_model_flops():
    args = [
        "--model",
        "pretrain_videomae_small_patch16_224",
        "--batch",
        "1",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--peak-tflops",
        "0.5",
        "--count-saved",
    ]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["impl"] == "ours" and record["model"] == "pretrain_videomae_small_patch16_224"
    assert len(record["step_s_all"]) == 2 and record["step_s_median"] > 0
    assert record["peak_rss_mb"] > 100  # a ViT-S with AdamW state cannot fit in less
    assert math.isfinite(record["loss_last"])
    assert record["page_faults_per_step"] >= 0 and record["kernel_s_per_step"] >= 0
    assert 0 <= record["others_cpu_share"] <= 1
    assert record["allocator"] == "glibc" and record["ac"] == "selective"  # the defaults, as the engine's
    assert 10 < record["saved_for_backward_mb"] < record["peak_rss_mb"]
    assert record["model_tflop_per_step"] == vit_s_step_flops() / 1e12  # the last decoder block: predicted rows
    assert math.isclose(record["achieved_tflops"], record["model_tflop_per_step"] / record["step_s_median"])
    assert math.isclose(record["mfu"], record["achieved_tflops"] / 0.5)


def test_a_missing_allocator_stops_with_the_package_to_install(monkeypatch):
    monkeypatch.setattr(common.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(SystemExit, match="^tcmalloc is not installed: apt-get install libtcmalloc-minimal4$"):
        common.preload_env("tcmalloc")


@pytest.mark.skipif(ctypes.util.find_library("jemalloc") is None, reason="apt-get install libjemalloc2")
def test_the_allocator_is_preloaded_into_the_child_process():
    env = common.preload_env("jemalloc")
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import common; print(common.is_loaded('jemalloc'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "True", done.stderr[-2000:]


@pytest.mark.parametrize("mode", ["selective", "full"])
def test_the_saved_bytes_are_what_each_checkpointing_mode_keeps(mode):
    """One block, B=2, N=10, D=32, 4 heads, fp32. Full: only the block's output. Selective: also the outputs
    of qkv (3D), attention (D, and a log-sum-exp per head and row), proj (D) and fc1 (4D); not fc2's."""
    from videomae import create_model
    from videomae.training.parallelize import apply_activation_checkpointing

    model = create_model(
        "vit_small_patch16_224",
        img_size=32,
        patch_size=8,
        num_frames=4,
        embed_dim=32,
        depth=1,
        num_heads=4,
        num_classes=0,
    )
    apply_activation_checkpointing(model, mode)
    x = torch.randn(2, 10, 32, requires_grad=True)

    def step(before_backward):
        out = model.blocks[0](x)
        before_backward()
        out.sum().backward()

    row = 2 * 10 * 32 * 4  # bytes of one (B, N, D) activation
    expected = row if mode == "full" else (3 + 1 + 1 + 4 + 1) * row + 2 * 4 * 10 * 4
    assert pretrain_step.saved_for_backward_mb(step) * 2**20 == expected
