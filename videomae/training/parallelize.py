"""Activation checkpointing, torch.compile and data parallelism, applied from outside the model (torchtitan style).

Order matters, as in torchtitan: AC first (compile traces the checkpointed block), compile per block (small,
repeated graphs compile once and keep parameter names), then FSDP2 per block and at the root (each block's
parameters are gathered just before use and freed after). DDP wraps the whole model instead.
None of these changes parameter names, so checkpoints stay interchangeable across setups.
"""

from __future__ import annotations

import contextlib

import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from videomae.models.vit import Block
from videomae.training.distributed import Dist


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """Every transformer block of a classifier or of a pretraining encoder + decoder."""
    return [m for m in model.modules() if isinstance(m, Block)]


def apply_compile(model: nn.Module) -> None:
    for block in transformer_blocks(model):
        block.compile()  # in place: the state-dict keys do not gain `_orig_mod.`


def apply_fsdp(model: nn.Module) -> nn.Module:
    """FSDP2 in place: parameters become DTensors sharded over all processes (autocast sets the compute dtype)."""
    from torch.distributed.fsdp import fully_shard

    for block in transformer_blocks(model):
        fully_shard(block)
    fully_shard(model)
    return model


def parallelize(model: nn.Module, d: Dist, *, parallel: str, activation_checkpointing: bool,
                compile: bool) -> nn.Module:
    """The model ready to train on `d.device` across `d.world_size` processes.

    Returns the module to call; for DDP that is the wrapper (use `unwrap` for the plain model).
    """
    model.to(d.device)
    if activation_checkpointing:
        model.set_grad_checkpointing(True)
    if compile:
        apply_compile(model)
    if not d.enabled:
        return model
    if parallel == "fsdp":
        return apply_fsdp(model)
    device_ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model behind a DDP wrapper (FSDP2 shards in place: the model is its own handle)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def gradient_sync(model: nn.Module, enabled: bool):
    """Context for one accumulation micro-step: gradients are reduced across processes only when `enabled`."""
    if isinstance(model, DistributedDataParallel) and not enabled:
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(enabled)
    return contextlib.nullcontext()
