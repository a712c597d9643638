"""AdamW with the official parameter groups, layer-wise LR decay, batch-scaled LR and per-step schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from videomae.training.config import OptimConfig

# Parameters before the first block (official: cls_token, mask_token, pos_embed, patch_embed.*) -> layer 0.
_STEM = ("patch_embed", "cls_token", "mask_token", "pos_embed")


def layer_id(name: str, num_layers: int) -> int:
    """Official layer id: stem 0, `blocks.k` k+1, everything else (norms, head) num_layers+1."""
    name = name.removeprefix("encoder.")
    if name.split(".")[0] in _STEM:
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers + 1


def is_no_decay(name: str, param: torch.Tensor, skip: set[str]) -> bool:
    """Official rule: 1-D tensors, `.bias`/`.scale` names and the model's `no_weight_decay()` names."""
    return param.ndim == 1 or name.endswith(".bias") or name.endswith(".scale") or name in skip


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float = 1.0) -> list[dict]:
    """Groups `layer_{id}_{decay|no_decay}` with `lr_scale = layer_decay^(L+1-id)` and their weight decay.

    Only trainable parameters are grouped (a frozen encoder is left out, as in linear probing).
    """
    num_layers = model.get_num_layers()
    skip = set(model.no_weight_decay())
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = is_no_decay(name, param, skip)
        lid = layer_id(name, num_layers) if layer_decay < 1.0 else 0
        key = f"layer_{lid}_{'no_decay' if no_decay else 'decay'}"
        scale = layer_decay ** (num_layers + 1 - lid) if layer_decay < 1.0 else 1.0
        group = groups.setdefault(
            key, {"params": [], "names": [], "lr_scale": scale, "weight_decay": 0.0 if no_decay else weight_decay}
        )
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over `param_groups`, fused (one kernel per step, no temporaries) on the CPU and GPUs alike.

    Measured on the ViT-B pretraining model, 2-core CPU: the fused step takes 0.055 s and allocates nothing;
    the foreach step takes 0.24 s, and its temporaries raise the training step's peak RSS by 220-240 MB.
    """
    groups = param_groups(model, cfg.weight_decay, cfg.layer_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=0.0, fused=True)


def cosine_schedule(base: float, final: float, total_steps: int, warmup_steps: int) -> np.ndarray:
    """Official per-iteration schedule: `linspace(0, base, warmup)` then a cosine from base to final."""
    warmup = np.linspace(0.0, base, warmup_steps) if warmup_steps > 0 else np.array([])
    n = max(total_steps - warmup_steps, 0)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * np.arange(n) / max(n, 1)))
    return np.concatenate([warmup, cosine])[:total_steps]


@dataclass
class Schedules:
    """The LR and weight-decay value of every optimizer step."""

    lr: np.ndarray
    weight_decay: np.ndarray

    def weight_decay_at(self, step: int) -> float:
        return float(self.weight_decay[min(step, len(self.weight_decay) - 1)])

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's LR (x its lr_scale) and, for decayed groups, the weight decay; returns the peak LR."""
        lr = float(self.lr[min(step, len(self.lr) - 1)])
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
            if group["weight_decay"] > 0:
                group["weight_decay"] = self.weight_decay_at(step)
        return max(g["lr"] for g in optimizer.param_groups)


def scaled_lr(cfg: OptimConfig, global_batch: int, views: int) -> tuple[float, float]:
    """(lr, min_lr) after the batch rule. `global_batch` = batch x accum x processes (videos)."""
    if cfg.lr_rule == "none":
        return cfg.lr, cfg.min_lr
    factor = global_batch * (views if cfg.lr_rule == "views" else 1) / cfg.base_batch
    return cfg.lr * factor, cfg.min_lr * factor


def build_schedules(cfg: OptimConfig, lr: float, min_lr: float, total_steps: int, steps_per_epoch: int) -> Schedules:
    warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else int(math.floor(cfg.warmup_epochs * steps_per_epoch))
    end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    return Schedules(
        cosine_schedule(lr, min_lr, total_steps, warmup), cosine_schedule(cfg.weight_decay, end, total_steps, 0)
    )
