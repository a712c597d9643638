"""Fused attention (F.scaled_dot_product_attention) against the official explicit softmax(q·kᵀ)·v, forward +
backward, at the shapes of a VideoMAE V2 pretraining step (batch 4, 16x224: encoder 160 tokens, decoder
160 + 784 tokens) and of a ViT-B fine-tuning step (batch 2, all 1568 tokens).

    python bench/attention.py --threads 2

Prints one JSON line per shape with the median milliseconds of both paths and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {  # (batch, heads, tokens, head_dim)
    "vit_b_encoder": (4, 12, 160, 64),
    "vit_b_decoder": (4, 6, 944, 64),
    "vit_s_decoder": (4, 3, 944, 64),
    "vit_b_finetune": (2, 12, 1568, 64),
}


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The official path: scale q, q·kᵀ, softmax, ·v."""
    return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1) @ v


def time_forward_backward(fn, shape: tuple[int, ...], repeats: int) -> float:
    q, k, v = (torch.randn(*shape, requires_grad=True) for _ in range(3))
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        start = time.perf_counter()
        fn(q, k, v).sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name, shape in SHAPES.items():
        fused = time_forward_backward(F.scaled_dot_product_attention, shape, args.repeats)
        explicit = time_forward_backward(explicit_attention, shape, args.repeats)
        print(
            json.dumps(
                {
                    "shape": name,
                    "bhnd": shape,
                    "fused_ms": round(fused, 1),
                    "explicit_ms": round(explicit, 1),
                    "speedup": round(explicit / fused, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
