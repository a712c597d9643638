"""Multi-view video classification: clips x crops per video, softmax averaged (the official test protocol).

`Predictor` is the Python API (`videomae predict` is a thin layer over it): a checkpoint in, top-k class names and
probabilities out, for video files, frame folders or decoded frames, with the preprocessing the checkpoint was
trained with (its preprocessing.json) unless told otherwise.

Views are those of the official test split (reference §5.2), the same as the dataset's test split:
`num_clips` temporal windows spread evenly over the video (every `sampling_rate`-th frame, or one frame per
segment for segment-sampled models such as SSv2's), each cut into `num_crops` squares along the long side
after a short-side resize. The per-view softmax probabilities are averaged, as the official `merge`.

Several videos are decoded in DataLoader worker processes (`num_workers`) while the main process runs the model
(`videomae.apps.decoding`); on GPUs the model runs in bf16 autocast by default and its fp32 matrix products on
TF32 tensor cores.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
import torch.nn as nn

from videomae.apps.decoding import VideoResult, decode_workers, in_input_order, run_videos
from videomae.apps.inputs import InputVideo
from videomae.apps.loading import TrainedSettings, load_model
from videomae.checkpoint import locate, read_labels
from videomae.data.decoders import VideoReader
from videomae.data.manifests import read_label_file
from videomae.data.sampling import test_indices
from videomae.data.transforms import multiview_clip
from videomae.devices import autocast, pick_device, resolved_precision, tf32_matmuls
from videomae.errors import ConfigError, DataError

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
        precision: "fp32" or "bf16" (autocast).
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
            names = (
                kinetics_labels(by_size[num_classes])
                if num_classes in by_size
                else [f"class {i}" for i in range(num_classes)]
            )
    if len(names) != num_classes:
        raise DataError(
            f"{spec or 'the label file'} has {len(names)} class names but the model has {num_classes} "
            f"outputs; pass --labels with a matching list"
        )
    return names


class FramesReader:
    """Decoded frames (T, H, W, 3) uint8 read like a video file."""

    fps = 0.0

    def __init__(self, frames: np.ndarray | torch.Tensor):
        frames = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise DataError(
                f"decoded frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {tuple(frames.shape)}"
            )
        self.frames, self.num_frames = frames, len(frames)

    def read(self, indices) -> np.ndarray:
        return self.frames[list(indices)]

    def close(self) -> None:
        pass


def view_batches(reader: VideoReader, cfg: ViewConfig):
    """Yield batches of test views (b, 3, T, S, S) of one video; it is read once per temporal view."""
    try:
        pending = []
        for clip in range(cfg.num_clips):
            indices = test_indices(
                reader.num_frames, cfg.num_frames, cfg.sampling_rate, cfg.sparse, clip, cfg.num_clips
            )
            frames = reader.read(indices.tolist())  # (T, H, W, 3)
            pending += [multiview_clip(frames, cfg.short_side, crop, cfg.num_crops) for crop in range(cfg.num_crops)]
            while len(pending) >= cfg.batch_size:
                yield torch.stack(pending[: cfg.batch_size])
                pending = pending[cfg.batch_size :]
        if pending:
            yield torch.stack(pending)
    finally:
        reader.close()


def input_name(video) -> str:
    """What a prediction calls its input: the path, or "frames" for decoded frames."""
    if isinstance(video, InputVideo):
        return video.path
    return os.fspath(video) if isinstance(video, (str, os.PathLike)) else "frames"


def open_input(video, backend: str) -> VideoReader:
    """A reader over a path, an `InputVideo` or decoded uint8 (T, H, W, 3) frames."""
    if isinstance(video, (str, os.PathLike)):
        video = InputVideo(os.fspath(video), os.path.basename(os.fspath(video)))
    if isinstance(video, InputVideo):
        return video.open(backend)
    return FramesReader(video)


def open_views(cfg: ViewConfig, backend: str, video) -> tuple[dict, Iterator[torch.Tensor]]:
    """The batches of test views of one input (run where it is decoded: a worker process, or here)."""
    return {}, view_batches(open_input(video, backend), cfg)


@torch.no_grad()
def view_probabilities(model: nn.Module, cfg: ViewConfig, device: torch.device, batch: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes of a batch of views: (b, C) float64 on the CPU."""
    with tf32_matmuls(device), autocast(cfg.precision, device):
        logits = model(batch).float()  # (b, C)
    return torch.softmax(logits.double(), dim=-1).cpu()


@dataclass
class Prediction:
    """Top-k classes of one video, or why it could not be classified."""

    video: str
    views: int
    top: list[tuple[int, str, float]]  # (class index, name, probability)
    error: str | None = None

    @property
    def labels(self) -> list[str]:
        return [name for _, name, _ in self.top]

    @property
    def probabilities(self) -> list[float]:
        return [probability for _, _, probability in self.top]

    def to_dict(self) -> dict:
        if self.error is not None:
            return {"video": self.video, "error": self.error}
        return {
            "video": self.video,
            "views": self.views,
            "top_k": [{"index": i, "label": name, "probability": _json_number(p)} for i, name, p in self.top],
        }


def _json_number(value: float) -> float | None:
    """JSON has no NaN: a non-finite probability (a diverged model) is written as null."""
    return round(value, 6) if math.isfinite(value) else None


def top_k_classes(probabilities: np.ndarray, names: list[str], k: int) -> list[tuple[int, str, float]]:
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


def check_counts(counts: dict[str, int | None]) -> None:
    """Raise ConfigError for the first count below 1, named as the caller spells it."""
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")


class Predictor:
    """Top-k class names and probabilities of videos, as transformers' pipeline, with the official test views.

    >>> predictor = Predictor("vit_b_k710_dl_from_giant")   # any checkpoint: path, run, hf-hub:..., zoo name
    >>> predictor("cooking.mp4").labels[0]                  # a video file or a frame folder
    >>> predictor(["a.mp4", "b.mp4"])                        # several videos: a list of Predictions
    >>> predictor(frames)                                    # decoded uint8 (T, H, W, 3) tensor or array

    Args:
        checkpoint: a fine-tuned classifier: anything `videomae.checkpoint.locate` accepts.
        device: "cpu", "cuda", ... (default: cuda when available).
        model: architecture name, for official files whose architecture cannot be inferred.
        labels: class names: "k400" ... "k710" or a file (default: the checkpoint's, else Kinetics by class count).
        top_k: classes per prediction.
        clips, crops, sampling_rate, short_side: test views (default: as trained, else 5 x 3, rate 4, the model's
            input size); a value differing from training is used, with a warning.
        batch_size: views per forward pass.
        precision: "auto" (bf16 autocast on GPUs, fp32 on the CPU), "fp32" or "bf16". On GPUs fp32 matrix
            products run on TF32 tensor cores, within each forward pass only.
        backend: video decoder for files: "pyav", "decord", "torchcodec" or "auto".
        num_workers: processes decoding the videos of a list while this one runs the model; None = 0 on the
            CPU (the model needs the cores), 4 on GPUs. The predictions are the same for any count.
    """

    def __init__(
        self,
        checkpoint: str,
        device: str | torch.device | None = None,
        *,
        model: str | None = None,
        labels: str | None = None,
        top_k: int = 5,
        clips: int | None = None,
        crops: int | None = None,
        sampling_rate: int | None = None,
        short_side: int | None = None,
        batch_size: int = 8,
        precision: str = "auto",
        backend: str = "pyav",
        num_workers: int | None = None,
    ):
        check_counts(
            {
                "top_k": top_k,
                "clips": clips,
                "crops": crops,
                "sampling_rate": sampling_rate,
                "short_side": short_side,
                "batch_size": batch_size,
            }
        )
        self.device = pick_device(str(device) if device is not None else None)
        self.num_workers = decode_workers(num_workers, self.device)
        self.model = load_model(str(checkpoint), model).to(self.device)
        config = self.model.config
        if config.kind != "classifier" or config.num_classes < 1:
            raise ConfigError(
                f"{checkpoint} is not a classifier (kind {config.kind!r}, {config.num_classes} "
                f"classes); prediction needs a fine-tuned checkpoint"
            )
        self.labels = resolve_labels(labels, str(checkpoint), config.num_classes)
        trained = TrainedSettings.of(str(checkpoint))
        self.views = ViewConfig(
            num_clips=trained.pick("clips", clips, "test_num_segment", 5),
            num_crops=trained.pick("crops", crops, "test_num_crop", 3),
            num_frames=config.num_frames,
            sampling_rate=trained.pick("sampling rate", sampling_rate, "sampling_rate", 4),
            sparse=trained.pick("segment sampling", None, "sparse", False),
            short_side=trained.pick("short side", short_side, "short_side_size", config.image_hw[0]),
            batch_size=batch_size,
            precision=resolved_precision(precision, self.device),
        )
        self.top_k, self.backend = top_k, backend

    def __call__(self, inputs, top_k: int | None = None) -> Prediction | list[Prediction]:
        """Predict one input (a path, or decoded frames) or a list of them.

        Raises:
            DataError: a video cannot be read.
        """
        if not isinstance(inputs, (list, tuple)):
            return self.predict(inputs, top_k)
        return [self.prediction(inputs, result, top_k, raise_error=True) for result in self.results(list(inputs))]

    def predict(self, video, top_k: int | None = None) -> Prediction:
        """One video: a file or frame folder (path or InputVideo) or decoded uint8 (T, H, W, 3) frames.

        Raises:
            DataError: the video cannot be read.
        """
        (result,) = self.results([video], num_workers=0)
        return self.prediction([video], result, top_k, raise_error=True)

    def predict_all(self, videos: list, top_k: int | None = None) -> Iterator[Prediction]:
        """The predictions of many videos, in their order, decoded by `num_workers` processes; a video that
        cannot be read gives a Prediction whose `error` says why (the others go on)."""
        for result in self.results(videos):
            yield self.prediction(videos, result, top_k, raise_error=False)

    def results(self, videos: list, num_workers: int | None = None) -> Iterator[VideoResult]:
        """Every video's per-batch view probabilities, in input order."""
        workers = self.num_workers if num_workers is None else num_workers
        return in_input_order(
            run_videos(
                videos,
                functools.partial(open_views, self.views, self.backend),
                functools.partial(view_probabilities, self.model, self.views, self.device),
                num_workers=min(workers, len(videos)),
                device=self.device,
            )
        )

    def prediction(self, videos: list, result: VideoResult, top_k: int | None, *, raise_error: bool) -> Prediction:
        """The Prediction of `videos[result.index]`; a video that could not be read raises, or gives a
        Prediction with `error`."""
        name = input_name(videos[result.index])
        if result.error is not None:
            if raise_error:
                raise result.error
            return Prediction(name, 0, [], error=getattr(result.error, "reason", str(result.error)))
        probabilities = torch.cat(result.outputs).mean(dim=0).numpy()  # mean softmax over all views: (C,)
        top = top_k_classes(probabilities, self.labels, min(top_k or self.top_k, len(self.labels)))
        return Prediction(name, self.views.num_clips * self.views.num_crops, top)
