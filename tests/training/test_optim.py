"""Parameter groups, layer-wise LR decay, schedules and LR scaling against the documented formulas (§4, §6.1)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from videomae.factory import create_model
from videomae.training.config import OptimConfig
from videomae.training.optim import build_optimizer, build_schedules, cosine_schedule, scaled_lr

TINY = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=3, num_heads=2, num_classes=5)


def expected_scale(name: str, depth: int, decay: float) -> float:
    """§6.1: values[i] = decay^(L+1-i); stem -> 0, blocks.k -> k+1, the rest -> L+1."""
    if name.startswith(("patch_embed", "cls_token", "pos_embed", "mask_token")):
        layer = 0
    elif name.startswith("blocks."):
        layer = int(name.split(".")[1]) + 1
    else:
        layer = depth + 1
    return decay ** (depth + 1 - layer)


def test_layer_decay_groups_follow_the_official_layer_ids():
    model = create_model("vit_small_patch16_224", **TINY)
    optimizer = build_optimizer(model, OptimConfig(lr=1.0, layer_decay=0.75, weight_decay=0.05))
    seen = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            seen[id(param)] = (group["lr_scale"], group["weight_decay"])
    for name, param in model.named_parameters():
        scale, wd = seen[id(param)]
        assert scale == pytest.approx(expected_scale(name, 3, 0.75)), name
        no_decay = param.ndim == 1 or name.endswith(".bias")
        assert wd == (0.0 if no_decay else 0.05), name
    assert expected_scale("patch_embed.proj.weight", 12, 0.75) == pytest.approx(0.0238, abs=1e-4)  # ViT-B, §6.1


def test_pretraining_groups_exclude_mask_token_and_have_no_layer_decay():
    model = create_model("pretrain_videomae_small_patch16_224", **{**TINY, "num_classes": 0})
    optimizer = build_optimizer(model, OptimConfig(weight_decay=0.05))
    names = {n: p for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        assert group["lr_scale"] == 1.0
        for param in group["params"]:
            if param is names["mask_token"]:
                assert group["weight_decay"] == 0.0


def reference_cosine(base, final, total, warmup):
    values = [base * i / (warmup - 1) for i in range(warmup)] if warmup > 1 else [0.0] * warmup
    n = total - warmup
    values += [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / n)) for i in range(n)]
    return values


@pytest.mark.parametrize("total,warmup", [(50, 10), (7, 0), (12, 3)])
def test_cosine_schedule_matches_the_formula(total, warmup):
    assert cosine_schedule(2e-3, 1e-5, total, warmup).tolist() == pytest.approx(
        reference_cosine(2e-3, 1e-5, total, warmup), rel=1e-12
    )


def test_schedule_sets_group_lr_times_scale_and_weight_decay():
    model = create_model("vit_small_patch16_224", **TINY)
    cfg = OptimConfig(lr=1e-3, min_lr=1e-6, warmup_epochs=1, layer_decay=0.5, weight_decay=0.05, weight_decay_end=0.1)
    optimizer = build_optimizer(model, cfg)
    schedules = build_schedules(cfg, 1e-3, 1e-6, total_steps=20, steps_per_epoch=4)
    schedules.apply(optimizer, 9)
    lr9 = reference_cosine(1e-3, 1e-6, 20, 4)[9]
    wd9 = reference_cosine(0.05, 0.1, 20, 0)[9]
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(lr9 * group["lr_scale"])
        assert group["weight_decay"] in (0.0, pytest.approx(wd9))


def test_lr_scaling_rules():
    cfg = OptimConfig(lr=1e-3, min_lr=1e-6)
    assert scaled_lr(cfg, 512, 2) == pytest.approx((2e-3, 2e-6))  # official: views not counted
    views = OptimConfig(lr=1e-3, min_lr=1e-6, lr_rule="views")
    assert scaled_lr(views, 512, 2) == pytest.approx((4e-3, 4e-6))
    assert scaled_lr(OptimConfig(lr=1e-3, lr_rule="none"), 512, 2)[0] == 1e-3


def test_adamw_is_fused_and_steps_as_the_per_tensor_reference():
    model = create_model("vit_small_patch16_224", **TINY)
    cfg = OptimConfig(lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    optimizer = build_optimizer(model, cfg)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    reference = copy.deepcopy(model)
    reference_groups = [
        {"params": [dict(reference.named_parameters())[n] for n in g["names"]], "weight_decay": g["weight_decay"]}
        for g in optimizer.param_groups
    ]
    plain = torch.optim.AdamW(reference_groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, foreach=False)
    for net in (model, reference):
        for i, param in enumerate(net.parameters()):
            param.grad = torch.full_like(param, 0.01 * (i + 1)).sin()
    optimizer.step()
    plain.step()
    for (name, got), want in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=name)
