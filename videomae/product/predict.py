"""Multi-view video classification: clips x crops per video, softmax averaged (the official test protocol).

Views are those of the official test split (reference §5.2), the same as the dataset's test split:
`num_clips` temporal windows spread evenly over the video (every `sampling_rate`-th frame, or one frame per
segment for segment-sampled models such as SSv2's), each cut into `num_crops` squares along the long side
after a short-side resize. The per-view softmax probabilities are averaged, as the official `merge`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn as nn

from videomae.data.manifests import read_label_file
from videomae.checkpoint import locate, read_labels
from videomae.data.sampling import test_indices
from videomae.data.transforms import multiview_clip
from videomae.errors import DataError
from videomae.product.common import InputVideo, autocast

KINETICS_LABELS = ("k400", "k600", "k700", "k710")


@dataclass(frozen=True)
class ViewConfig:
    """Test views of one video.

    Attributes:
        num_clips: temporal views.
        num_crops: spatial views per temporal view (1 = centre, 3 = both ends and centre).
        num_frames: frames per clip (the model's).
        sampling_rate: frame interval inside a clip.
        sparse: one frame per segment instead of a dense clip (models trained with segment sampling).
        short_side: short side after resizing; crops are short_side x short_side.
        batch_size: views per forward pass.
        precision: "fp32" or "bf16".
    """

    num_clips: int = 5
    num_crops: int = 3
    num_frames: int = 16
    sampling_rate: int = 4
    sparse: bool = False
    short_side: int = 224
    batch_size: int = 8
    precision: str = "fp32"


def kinetics_labels(name: str) -> list[str]:
    """The shipped class names of Kinetics-400/600/700/710 (official order)."""
    resource = resources.files("videomae.resources") / "kinetics" / f"label_map_{name}.txt"
    return [line.strip() for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]


def resolve_labels(spec: str | None, checkpoint: str, num_classes: int) -> list[str]:
    """Class names for a classifier of `num_classes` outputs.

    Order of preference: `spec` ("k400" ... "k710" or a file), a `labels.txt` beside the checkpoint (or in
    its training run directory), the Kinetics list of that size, else "class 0", "class 1", ...

    Raises:
        DataError: the names do not match the classifier's size, or the file cannot be read.
    """
    if spec in KINETICS_LABELS:
        names = kinetics_labels(spec)
    elif spec is not None:
        names = read_label_file(spec)
    else:
        names = read_labels(locate(checkpoint))
        if names is None:
            by_size = {len(kinetics_labels(k)): k for k in KINETICS_LABELS}
            names = kinetics_labels(by_size[num_classes]) if num_classes in by_size \
                else [f"class {i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise DataError(f"{spec or 'the label file'} has {len(names)} class names but the model has {num_classes} "
                        f"outputs; pass --labels with a matching list")
    return names


def view_batches(video: InputVideo, cfg: ViewConfig, backend: str):
    """Yield batches of test views (b, 3, T, S, S) of one video; the file is read once per temporal view."""
    reader = video.open(backend)
    try:
        pending = []
        for clip in range(cfg.num_clips):
            indices = test_indices(reader.num_frames, cfg.num_frames, cfg.sampling_rate, cfg.sparse, clip,
                                   cfg.num_clips)
            frames = reader.read(indices.tolist())  # (T, H, W, 3)
            pending += [multiview_clip(frames, cfg.short_side, crop, cfg.num_crops) for crop in range(cfg.num_crops)]
            while len(pending) >= cfg.batch_size:
                yield torch.stack(pending[:cfg.batch_size])
                pending = pending[cfg.batch_size:]
        if pending:
            yield torch.stack(pending)
    finally:
        reader.close()


@torch.no_grad()
def video_probabilities(model: nn.Module, video: InputVideo, cfg: ViewConfig, device: torch.device,
                        backend: str = "pyav") -> np.ndarray:
    """Mean softmax over all views of one video: (C,) float64."""
    probabilities = []
    for batch in view_batches(video, cfg, backend):
        with autocast(cfg.precision, device):
            logits = model(batch.to(device)).float()  # (b, C)
        probabilities.append(torch.softmax(logits.double(), dim=-1).cpu())
    return torch.cat(probabilities).mean(dim=0).numpy()


@dataclass
class Prediction:
    """Top-k classes of one video, or why it could not be classified."""

    video: str
    views: int
    top: list[tuple[int, str, float]]  # (class index, name, probability)
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"video": self.video, "error": self.error}
        return {"video": self.video, "views": self.views,
                "top_k": [{"index": i, "label": name, "probability": _json_number(p)} for i, name, p in self.top]}


def _json_number(value: float) -> float | None:
    """JSON has no NaN: a non-finite probability (a diverged model) is written as null."""
    return round(value, 6) if math.isfinite(value) else None


def top_k(probabilities: np.ndarray, names: list[str], k: int) -> list[tuple[int, str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(i), names[i], float(probabilities[i])) for i in order]


def format_table(predictions: list[Prediction]) -> str:
    """A plain-text table: one block per video, one line per class."""
    lines = []
    for prediction in predictions:
        if prediction.error is not None:
            lines.append(f"{prediction.video}: failed: {prediction.error}")
            continue
        lines.append(f"{prediction.video} ({prediction.views} views)")
        lines += [f"  {rank}. {100 * p:6.2f}%  {name}" for rank, (_, name, p) in enumerate(prediction.top, start=1)]
    return "\n".join(lines)


def format_json(predictions: list[Prediction]) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=1, allow_nan=False)
