"""What each stage adds to the shared engine: its model, its loss and its data.

Every loss has the signature `loss(model, batch, rng) -> scalar` (fp32): the mean over the batch's `count(batch)`
loss terms (clips, or reconstructed-and-hidden tokens; an int or a tensor on the device). The engine weights each
batch by its count so that the optimized and logged loss is the mean over the global batch, whatever the process
count and accumulation. `batch` is on the device, clips normalised; `rng` (numpy) seeds the stage's own draws
(Mixup/CutMix) on the host, so they never wait for the device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from videomae.data import DataConfig, MixupCutmix, build_dataset
from videomae.factory import create_model
from videomae.training.config import TrainConfig
from videomae.training.evaluation import evaluate
from videomae.training.objective import indexed_pretraining_loss

LossFn = Callable[[nn.Module, dict, np.random.Generator], torch.Tensor]
CountFn = Callable[[dict], int | torch.Tensor]
EvaluateFn = Callable[..., dict]  # (model, dataset, dist, *, batch_size, num_workers, autocast, out_dir) -> metrics


@dataclass
class Task:
    """A stage, ready for the engine. `train_set` is None for evaluation.

    `evaluate` scores the val and test sets (and writes its files to `out_dir`); `metrics` names the metrics that
    validation logs, the first of which (higher is better) picks the best checkpoint.
    """

    model: nn.Module
    data: DataConfig
    train_set: Dataset | None
    val_set: Dataset | None
    test_set: Dataset | None
    loss: LossFn | None
    count: CountFn | None = None
    evaluate: EvaluateFn = evaluate
    metrics: tuple[str, ...] = ("acc1", "acc5")


def count_clips(batch: dict) -> int:
    return batch["video"].shape[0]


def count_loss_tokens(batch: dict) -> torch.Tensor:
    """Tokens the pretraining loss averages over: hidden from the encoder and reconstructed by the decoder (a
    tensor on the batch's device: the step never waits for it)."""
    return batch["loss_weight"].sum()


def count_decoded_tokens(batch: dict) -> int:
    """Tokens the pretraining loss averages over with `loss_on_all_decoded`: every one the decoder reconstructs."""
    return batch["predicted_idx"].numel()


def loss_token_count(all_decoded: bool) -> CountFn:
    """The count that goes with `reconstruction_objective(..., all_decoded)`."""
    return count_decoded_tokens if all_decoded else count_loss_tokens


def model_args(cfg: TrainConfig, num_classes: int | None = None) -> dict:
    """Architecture overrides: the recipe's `model_args`, sized by the data (frames, crop)."""
    args = dict(cfg.model_args, img_size=cfg.data.input_size, num_frames=cfg.data.num_frames)
    if num_classes is not None:
        args["num_classes"] = num_classes
    return args


def data_for(model: nn.Module, cfg: TrainConfig) -> DataConfig:
    """The data config with the token geometry of the model (one source of truth for patch and tubelet)."""
    return dataclasses.replace(cfg.data, patch_size=model.config.patch_size, tubelet_size=model.config.tubelet_size)


# ----------------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------------


def reconstruction_objective(tubelet: int, patch: int, normalize: bool, all_decoded: bool = False) -> LossFn:
    """The pretraining loss over the decoded tokens hidden from the encoder (official); with `all_decoded`, over
    every decoded token, also those the encoder saw (`TrainConfig.loss_on_all_decoded`)."""

    def loss(model: nn.Module, batch: dict, rng: np.random.Generator) -> torch.Tensor:
        video = batch["video"]
        predictions = model(video, visible_idx=batch["visible_idx"], predicted_idx=batch["predicted_idx"])
        weight = torch.ones_like(batch["loss_weight"]) if all_decoded else batch["loss_weight"]
        return indexed_pretraining_loss(predictions, video, batch["predicted_idx"], weight, tubelet, patch, normalize)

    return loss


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to soft targets (B, C), in fp32."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


class Targets:
    """Batch -> (video, soft targets): Mixup/CutMix when enabled, else label smoothing (official criteria)."""

    def __init__(self, num_classes: int, data: DataConfig):
        self.num_classes, self.smoothing = num_classes, data.label_smoothing
        self.mix = (
            MixupCutmix(num_classes, data.mixup, data.cutmix, data.label_smoothing)
            if data.mixup > 0 or data.cutmix > 0
            else None
        )

    def __call__(self, batch: dict, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        video, labels = batch["video"], batch["label"]
        if self.mix is not None:
            return self.mix(video, labels, rng)
        # scatter, not F.one_hot: one_hot reads the labels on the host to check them
        on = torch.zeros(labels.shape[0], self.num_classes, device=labels.device).scatter_(1, labels[:, None], 1.0)
        return video, on * (1 - self.smoothing) + self.smoothing / self.num_classes


def classification_objective(targets: Targets) -> LossFn:
    def loss(model: nn.Module, batch: dict, rng: np.random.Generator) -> torch.Tensor:
        video, soft = targets(batch, rng)
        return soft_cross_entropy(model(video), soft)

    return loss


def distillation_objective(targets: Targets, teacher: nn.Module, temperature: float, alpha: float) -> LossFn:
    """alpha·T²·KL(teacher_T || student_T) + (1 − alpha)·CE(student, targets); the teacher runs in inference mode."""

    def loss(model: nn.Module, batch: dict, rng: np.random.Generator) -> torch.Tensor:
        video, soft = targets(batch, rng)
        with torch.inference_mode():
            teacher_logits = teacher(video)
        teacher_logits = teacher_logits.float().clone()  # a normal tensor the loss may save for backward
        logits = model(video).float()
        kl = (
            F.kl_div(
                F.log_softmax(logits / temperature, dim=-1),
                F.log_softmax(teacher_logits / temperature, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
            * temperature**2
        )
        return alpha * kl + (1 - alpha) * soft_cross_entropy(logits, soft) if alpha < 1 else kl

    return loss


# ----------------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------------


def build_pretrain(cfg: TrainConfig, device: torch.device, report_dir: str | None) -> Task:
    model = create_model(cfg.model, pretrained=cfg.pretrained, **model_args(cfg))
    data = data_for(model, cfg)
    train = build_dataset(data, "pretrain", "train", seed=cfg.seed, report_dir=report_dir)
    all_decoded = cfg.loss_on_all_decoded
    loss = reconstruction_objective(data.tubelet_size, data.patch_size, cfg.normalize_target, all_decoded)
    return Task(model, data, train, None, None, loss, loss_token_count(all_decoded))


def _labelled_sets(cfg: TrainConfig, report_dir: str | None, train: bool):
    """(train, val, test) fine-tuning datasets; the class count comes from the training (or test) data."""
    data = cfg.data
    sets = {
        split: build_dataset(data, "finetune", split, seed=cfg.seed, report_dir=report_dir)
        for split in (("train", "val", "test") if train else ("test",))
    }
    return (
        sets.get("train"),
        sets.get("val") if cfg.val_every else None,
        sets["test"] if cfg.test_at_end or not train else None,
    )


def build_classifier_stage(cfg: TrainConfig, device: torch.device, report_dir: str | None) -> Task:
    """Fine-tuning, supervised post-pretraining, linear probing, distillation and evaluation."""
    training = cfg.stage != "eval"
    train, val, test = _labelled_sets(cfg, report_dir, training)
    num_classes = (train or test).num_classes
    model = create_model(cfg.model, pretrained=cfg.pretrained, **model_args(cfg, num_classes))
    data = data_for(model, cfg)
    if not training:
        return Task(model, data, None, None, test, None)
    if cfg.stage == "probe":  # linear probing: only the classifier learns
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("head."))
    targets = Targets(num_classes, data)
    if cfg.stage == "distill":
        teacher = create_model(
            cfg.distill.teacher_model,
            pretrained=cfg.distill.teacher,
            num_classes=num_classes,
            img_size=data.input_size,
            num_frames=data.num_frames,
        )
        teacher = teacher.to(device).eval().requires_grad_(False)
        loss = distillation_objective(targets, teacher, cfg.distill.temperature, cfg.distill.alpha)
    else:
        loss = classification_objective(targets)
    return Task(model, data, train, val, test, loss, count_clips)


def build_task(cfg: TrainConfig, device: torch.device, report_dir: str | None = None) -> Task:
    if cfg.stage == "pretrain":
        return build_pretrain(cfg, device, report_dir)
    if cfg.detection is not None:  # the detect stage, or eval of a detection recipe
        from videomae.detection.training import build_detection_task  # it builds on this module

        return build_detection_task(cfg, device, report_dir)
    return build_classifier_stage(cfg, device, report_dir)
