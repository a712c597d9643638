"""Where and in which precision a model runs: one choice for training, evaluation and the apps.

Nothing here changes process-wide state when imported; `tf32_matmuls` changes one torch setting for the
duration of a `with` block, for the run that asked for it.
"""

from __future__ import annotations

import contextlib
import typing
from typing import Literal

import torch

from videomae.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS = typing.get_args(Precision)


def pick_device(name: str | None) -> torch.device:
    """The requested device, or CUDA when available, else the CPU."""
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise ConfigError(f"unknown device {name!r}: {error}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None = fp32. "auto": fp32 on the CPU (bf16 there is emulated and slow), bf16 on accelerators."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def resolved_precision(precision: str, device: torch.device) -> str:
    """The precision `precision` means on `device`: "auto" becomes "bf16" on GPUs and "fp32" on the CPU."""
    dtype = autocast_dtype(precision, device)
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


@contextlib.contextmanager
def tf32_matmuls(device: torch.device):
    """Within the block, fp32 matrix products on CUDA run on TF32 tensor cores (10-bit mantissa inputs, fp32
    accumulation: inference-grade, several times faster on Ampere and later). The setting before is restored
    after; on other devices nothing changes.

    Set through `torch.backends.cuda.matmul.fp32_precision`, torch's current API, whose restore is exact
    whichever API set the value before. While the block runs, torch's legacy getters (`allow_tf32`,
    `torch.get_float32_matmul_precision()`) raise torch's mixed-API error; nothing of ours reads them.
    (cuDNN convolutions already allow TF32 by default.)"""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    try:
        yield
    finally:
        matmul.fp32_precision = before


def autocast(precision: str, device: torch.device):
    """A context that runs its block in `precision` on `device` (autocast, or nothing for fp32)."""
    dtype = autocast_dtype(precision, device)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
