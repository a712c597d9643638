"""Multi-view evaluation with the official merge (reference §5.3): softmax per view, averaged per video.

Views are gathered across processes in memory; duplicates from the sampler's padding are dropped by
(video, view). Metrics: top-1/top-5 per view and per video, per-class accuracy and the confusion matrix.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import torch
import torch.nn as nn

from videomae.data.loader import build_eval_loader, to_device, worker_batches
from videomae.training.distributed import Dist, gather_objects


@torch.no_grad()
def predict_views(
    model: nn.Module, dataset, d: Dist, batch_size: int, num_workers: int, autocast=contextlib.nullcontext
) -> dict[tuple[int, int], tuple[int, np.ndarray]]:
    """{(video_index, view): (label, logits (C,) fp32)} over the whole dataset, from every process."""
    loader = build_eval_loader(dataset, batch_size, num_workers, d.rank, d.world_size)
    was_training = model.training
    model.eval()
    keys, outputs = [], []
    with worker_batches(loader) as batches:
        for batch in batches:
            keys += zip(batch["video_index"].tolist(), batch["view"].tolist(), batch["label"].tolist())
            with autocast():
                outputs.append(model(to_device(batch, d.device)["video"]).float())  # (B, C), read back at the end
    model.train(was_training)
    logits = torch.cat(outputs).cpu().numpy() if outputs else np.zeros((0, dataset.num_classes), np.float32)
    local = [(*key, row) for key, row in zip(keys, logits)]
    views = {}
    for part in gather_objects(local, d):
        for video, view, label, logits in part:
            views[(video, view)] = (label, logits)  # padding repeats a view: keep one
    return views


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: label among the k highest scores (stable order on ties)."""
    top = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    return (top == labels[:, None]).any(axis=-1)


def merge_views(views: dict[tuple[int, int], tuple[int, np.ndarray]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Official 'prob' merge: (video indices, labels (V,), mean softmax over each video's views (V, C))."""
    per_video: dict[int, list] = {}
    labels: dict[int, int] = {}
    for (video, _view), (label, logits) in sorted(views.items()):
        per_video.setdefault(video, []).append(softmax(logits.astype(np.float64)))
        labels[video] = label
    videos = sorted(per_video)
    probs = np.stack([np.mean(per_video[v], axis=0) for v in videos])  # (V, C)
    return videos, np.array([labels[v] for v in videos]), probs


def compute_metrics(views: dict[tuple[int, int], tuple[int, np.ndarray]], merged, num_classes: int) -> dict:
    """Top-1/5 (%) per view and per video, per-class accuracy (%) and the confusion matrix (true x predicted)."""
    view_labels = np.array([label for label, _ in views.values()])
    view_logits = np.stack([logits for _, logits in views.values()])
    videos, labels, probs = merged
    predictions = probs.argmax(axis=-1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    totals = confusion.sum(axis=1)
    k5 = min(5, num_classes)
    return {
        "view_acc1": 100 * float(topk_hits(view_logits, view_labels, 1).mean()),
        "view_acc5": 100 * float(topk_hits(view_logits, view_labels, k5).mean()),
        "acc1": 100 * float(topk_hits(probs, labels, 1).mean()),
        "acc5": 100 * float(topk_hits(probs, labels, k5).mean()),
        "num_videos": len(videos),
        "num_views": len(views),
        "per_class_acc1": [100 * float(confusion[c, c] / totals[c]) if totals[c] else None for c in range(num_classes)],
        "confusion": confusion.tolist(),
    }


def write_results(metrics: dict, merged, out_dir: str, video_ids: list[str], class_names: list[str] | None) -> None:
    """`metrics.json` (with per-class accuracy and the confusion matrix) and `predictions.jsonl` (one per video)."""
    os.makedirs(out_dir, exist_ok=True)
    videos, labels, probs = merged
    with open(os.path.join(out_dir, "predictions.jsonl"), "w", encoding="utf-8") as handle:
        for video, label, p in zip(videos, labels, probs):
            top = np.argsort(-p, kind="stable")[:5]
            record = {
                "video_index": int(video),
                "video_id": video_ids[video],
                "label": int(label),
                "prediction": int(top[0]),
                "top5": top.tolist(),
                "top5_prob": p[top].round(6).tolist(),
            }
            if class_names:
                record["prediction_name"] = class_names[top[0]]
            handle.write(json.dumps(record) + "\n")
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(dict(metrics, class_names=class_names), handle, indent=1)


def evaluate(
    model: nn.Module,
    dataset,
    d: Dist,
    *,
    batch_size: int,
    num_workers: int = 0,
    autocast=contextlib.nullcontext,
    out_dir: str | None = None,
) -> dict:
    """Evaluate on a val/test dataset; rank 0 writes `out_dir` files when given. Returns the metrics."""
    views = predict_views(model, dataset, d, batch_size, num_workers, autocast)
    merged = merge_views(views)
    metrics = compute_metrics(views, merged, dataset.num_classes)
    if out_dir is not None and d.is_main:
        write_results(metrics, merged, out_dir, dataset.video_ids, dataset.class_names)
    return metrics
