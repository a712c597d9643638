"""Activation checkpointing, torch.compile and data parallelism, applied from outside the model (torchtitan style).

Order matters, as in torchtitan: AC first (compile traces the checkpointed block), compile per block (small,
repeated graphs compile once and keep parameter names), then FSDP2 per block and at the root (each block's
parameters are gathered just before use and freed after). DDP wraps the whole model instead.
None of these changes parameter names, so checkpoints stay interchangeable across setups.
"""

from __future__ import annotations

import contextlib
import typing
from functools import partial

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
    noop_context_fn,
)

from videomae.errors import ConfigError
from videomae.models.vit import Block
from videomae.training.distributed import Dist

ActivationCheckpointing = typing.Literal["none", "selective", "full"]
ACTIVATION_CHECKPOINTING = typing.get_args(ActivationCheckpointing)
# Selective AC keeps the outputs of the expensive ops, matrix products and attention, and recomputes everything
# else (LayerNorm, GELU, bias and residual adds, casts, dropout) in backward.
MATMUL_OPS = frozenset({"aten.mm", "aten.addmm"})
ATTENTION_OPS = frozenset(
    {
        "aten.bmm",
        "aten._scaled_dot_product_flash_attention_for_cpu",
        "aten._scaled_dot_product_flash_attention",
        "aten._scaled_dot_product_efficient_attention",
        "aten._scaled_dot_product_cudnn_attention",
    }
)
MATMULS_PER_BLOCK = 4  # qkv, proj, fc1, fc2, in this order


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """Every transformer block of a classifier or of a pretraining encoder + decoder."""
    return [m for m in model.modules() if isinstance(m, Block)]


def _selective_contexts():
    """A block's forward and recompute contexts for selective AC (one pair per call: the policy counts).

    fc2's output is not kept: backward needs only fc2's input, and recomputation stops once it has every
    tensor backward needs, which is before fc2 runs again (non-reentrant checkpoint's early stop).
    """
    matmuls = {False: 0, True: 0}  # seen in the forward, in the recomputation

    def policy(ctx, op, *args, **kwargs) -> CheckpointPolicy:
        name = str(op.overloadpacket)
        keep = name in ATTENTION_OPS
        if name in MATMUL_OPS:
            matmuls[ctx.is_recompute] += 1
            keep = matmuls[ctx.is_recompute] % MATMULS_PER_BLOCK != 0  # all but fc2
        return CheckpointPolicy.MUST_SAVE if keep else CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


def _checkpointed_call(forward, context_fn, *args, **kwargs):
    if not torch.is_grad_enabled():  # evaluation: nothing is saved, so nothing to recompute
        return forward(*args, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, context_fn=context_fn, **kwargs)


def apply_activation_checkpointing(model: nn.Module, mode: ActivationCheckpointing) -> None:
    """Recompute activations in backward, one checkpointed region per transformer block, in place.

    "full" keeps only each block's input; "selective" also keeps the outputs of its matrix products and
    attention and recomputes only the cheap ops; "none" leaves the model as it is. The blocks' forward is
    wrapped, not the blocks, so parameter names do not change.
    """
    if mode not in ACTIVATION_CHECKPOINTING:
        raise ConfigError(f"activation_checkpointing must be one of {list(ACTIVATION_CHECKPOINTING)}, got {mode!r}")
    if mode == "none":
        return
    context_fn = _selective_contexts if mode == "selective" else noop_context_fn
    for block in transformer_blocks(model):
        block.forward = partial(_checkpointed_call, block.forward, context_fn)  # a partial: deepcopy rebinds it


def apply_compile(model: nn.Module) -> None:
    for block in transformer_blocks(model):
        block.compile()  # in place: the state-dict keys do not gain `_orig_mod.`


def apply_fsdp(model: nn.Module, param_dtype: torch.dtype | None = None) -> nn.Module:
    """FSDP2 in place: parameters become DTensors sharded over all processes.

    `param_dtype` (the autocast dtype of a bf16 or fp16 run) is what each block's parameters are gathered in:
    half the all-gather traffic and no per-op casts under autocast. Gradients are reduced in fp32 and the
    sharded master weights and AdamW state stay fp32. None (fp32 runs) gathers and computes in fp32.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32 if param_dtype else None)
    for block in transformer_blocks(model):
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def parallelize(
    model: nn.Module,
    d: Dist,
    *,
    parallel: str,
    activation_checkpointing: ActivationCheckpointing,
    compile: bool,
    param_dtype: torch.dtype | None = None,
) -> nn.Module:
    """The model ready to train on `d.device` across `d.world_size` processes.

    `param_dtype`: the run's autocast dtype (None for fp32); FSDP gathers parameters in it (`apply_fsdp`).
    Returns the module to call; for DDP that is the wrapper (use `unwrap` for the plain model).
    """
    model.to(d.device)
    apply_activation_checkpointing(model, activation_checkpointing)
    if compile:
        apply_compile(model)
    if not d.enabled:
        return model
    if parallel == "fsdp":
        return apply_fsdp(model, param_dtype)
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
