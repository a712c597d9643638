"""The detect stage for the shared training engine: the detector, its loss, and its evaluation (AVA frame mAP).

Loss: binary cross-entropy of every real box's action logits (a sigmoid per action), averaged over actions and
boxes; the engine weights each batch by its box count, so the optimized loss is the mean over the global batch's
boxes. Evaluation: the test clips' action probabilities are written in the official result format
(`detections.csv`: one row per box and label-map action) and that file is scored by `evaluation.evaluate_files`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from videomae.data import collate_views
from videomae.data.loader import build_eval_loader, to_device, worker_batches
from videomae.detection.data import DetectionDataset, build_detection_dataset
from videomae.detection.evaluation import evaluate_files
from videomae.detection.formats import BoxRow, read_label_map, write_results
from videomae.errors import ConfigError
from videomae.factory import create_model
from videomae.models.detector import detector_from_classifier
from videomae.training.config import TrainConfig
from videomae.training.distributed import Dist, gather_objects, on_main, share
from videomae.training.stages import Task, data_for, model_args

RESULTS_FILE = "detections.csv"


def detection_loss(model: nn.Module, batch: dict, rng: np.random.Generator) -> torch.Tensor:
    """Mean binary cross-entropy over the real boxes and all actions, in fp32."""
    logits = model(batch["video"], batch["boxes"]).float()  # (B, M, C)
    per_box = F.binary_cross_entropy_with_logits(logits, batch["targets"], reduction="none").mean(dim=-1)  # (B, M)
    mask = batch["box_mask"]
    return (per_box * mask).sum() / mask.sum().clamp_min(1)


def count_boxes(batch: dict) -> torch.Tensor:
    """Boxes the loss averages over (a tensor on the batch's device: the step never waits for it)."""
    return batch["box_mask"].sum()


def same_shape_batches(batches: Iterator[dict], size: int) -> Iterator[dict]:
    """Consecutive one-clip batches joined into batches of up to `size` clips of one frame size (test clips keep
    their video's aspect ratio, so clips of different videos may not stack)."""
    pending: list[dict] = []
    for batch in batches:
        if pending and (len(pending) == size or batch["video"].shape != pending[0]["video"].shape):
            yield collate_views(pending)
            pending = []
        pending.append(batch)
    if pending:
        yield collate_views(pending)


@torch.no_grad()
def predict_keyframes(
    model: nn.Module, dataset: DetectionDataset, d: Dist, batch_size: int, num_workers: int, autocast
) -> dict[int, np.ndarray]:
    """{keyframe index: action probabilities (K, num_actions) of its K boxes}, from every process."""
    loader = build_eval_loader(dataset, 1, num_workers, d.rank, d.world_size)
    was_training = model.training
    model.eval()
    indices, masks, outputs = [], [], []
    with worker_batches(loader) as batches:
        for batch in same_shape_batches(batches, batch_size):
            indices += batch["keyframe_index"].tolist()
            masks.append(batch["box_mask"])
            batch = to_device(batch, d.device)
            with autocast():
                outputs.append(torch.sigmoid(model(batch["video"], batch["boxes"]).float()))  # (B, M, C)
    model.train(was_training)
    local = []
    if outputs:  # read back once, at the end
        for index, mask, probabilities in zip(indices, torch.cat(masks), torch.cat(outputs).cpu()):
            local.append((index, probabilities[mask].numpy()))  # (K, C): the real boxes only
    return {index: probabilities for part in gather_objects(local, d) for index, probabilities in part}


def detection_rows(
    dataset: DetectionDataset, predictions: dict[int, np.ndarray], actions: list[int]
) -> Iterator[BoxRow]:
    """Result rows: every predicted box of every keyframe (its box as given, not the widened one the model saw)
    with its probability of each evaluated action."""
    for index in sorted(predictions):
        keyframe = dataset.keyframes[index]
        for box, probabilities in zip(keyframe.boxes, predictions[index]):
            corners = tuple(float(v) for v in box)
            for action in actions:
                yield BoxRow(keyframe.video_id, keyframe.timestamp, corners, action, float(probabilities[action - 1]))


def score_detections(dataset: DetectionDataset, predictions: dict[int, np.ndarray], out_dir: str | None) -> dict:
    """Write the detections (in `out_dir`, else a temporary folder), score that file, write `metrics.json`."""
    det = dataset.det
    label_map = read_label_map(det.path(det.label_map))
    with contextlib.ExitStack() as stack:
        folder = out_dir or stack.enter_context(tempfile.TemporaryDirectory())
        os.makedirs(folder, exist_ok=True)
        results = os.path.join(folder, RESULTS_FILE)
        rows = write_results(results, detection_rows(dataset, predictions, list(label_map)))
        scored = evaluate_files(det.path(det.val_csv), results, det.path(det.label_map), det.path(det.val_excluded))
    metrics = {
        "mAP": 100 * scored.mean_ap,
        "per_action_ap": {
            label_map[action]: None if np.isnan(ap) else 100 * ap for action, ap in scored.per_action.items()
        },
        "num_groundtruth": {label_map[action]: count for action, count in scored.num_groundtruth.items()},
        "num_keyframes": len(predictions),
        "num_detections": rows,
        "official": scored.summary(label_map),
    }
    if out_dir is not None:
        with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=1)
    return metrics


def evaluate_detector(
    model: nn.Module,
    dataset: DetectionDataset,
    d: Dist,
    *,
    batch_size: int,
    num_workers: int = 0,
    autocast=contextlib.nullcontext,
    out_dir: str | None = None,
) -> dict:
    """Frame mAP (percent) of the detector on a val/test set; process 0 writes `out_dir/detections.csv` and
    `metrics.json` when `out_dir` is given. Every process returns the metrics."""
    predictions = predict_keyframes(model, dataset, d, batch_size, num_workers, autocast)
    return share(on_main(lambda: score_detections(dataset, predictions, out_dir), d), d)


def build_detection_task(cfg: TrainConfig, device: torch.device, report_dir: str | None) -> Task:
    """The detect stage (and `eval` of a detection recipe): a detector on the recipe's backbone weights.

    The data is read first, so that a wrong file stops the run before any weights are downloaded.
    """
    det, named = cfg.detection, cfg.model_config()
    data = dataclasses.replace(cfg.data, patch_size=named.patch_size, tubelet_size=named.tubelet_size)
    test = build_detection_dataset(data, det, "test", cfg.seed, report_dir)
    train = build_detection_dataset(data, det, "train", cfg.seed, report_dir) if cfg.stage != "eval" else None
    classifier = create_model(cfg.model, pretrained=cfg.pretrained, **model_args(cfg, det.num_actions))
    if data_for(classifier, cfg) != data:
        raise ConfigError(
            f"{cfg.pretrained} holds a model with {classifier.config.patch_size}-pixel patches and "
            f"{classifier.config.tubelet_size}-frame tubelets, {cfg.model} has {named.patch_size} and "
            f"{named.tubelet_size}: set model_args.patch_size and model_args.tubelet_size to the checkpoint's"
        )
    model = detector_from_classifier(classifier, det.roi_size)
    if train is None:
        return Task(model, data, None, None, test, None, evaluate=evaluate_detector, metrics=("mAP",))
    return Task(
        model,
        data,
        train,
        test if cfg.val_every else None,
        test if cfg.test_at_end else None,
        detection_loss,
        count_boxes,
        evaluate=evaluate_detector,
        metrics=("mAP",),
    )
