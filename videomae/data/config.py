"""Typed settings of the data pipeline: what to read, how to sample it, and how to augment it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from videomae.errors import DataError
from videomae.masking import MaskSpec, MaskType
from videomae.settings import check_choices

Backend = Literal["pyav", "decord", "torchcodec", "auto"]


@dataclass
class SourceConfig:
    """One source of a hybrid pretraining set.

    Attributes:
        manifest: list file of this source (official pretraining format, CSV, or a folder-per-class tree).
        root: folder that relative paths in the manifest are joined to.
        sampling_rate: frame interval of this source (official mix: 2 for 12-fps SSv2 frames, 4 otherwise).
        frame_template: file name template of frame folders, e.g. ``img_{:05}.jpg``.
        start_index: number of the first frame file (added to the 0-based frame index).
    """

    manifest: str
    root: str = ""
    sampling_rate: int = 4
    frame_template: str = "img_{:05}.jpg"
    start_index: int = 1


@dataclass
class SyntheticConfig:
    """A procedurally generated set of moving squares; the class is the direction of motion.

    Attributes:
        num_videos: number of distinct samples.
        num_classes: number of motion directions (evenly spaced angles).
        num_frames: frames per generated video.
        height: frame height in pixels.
        width: frame width in pixels.
    """

    num_videos: int = 64
    num_classes: int = 4
    num_frames: int = 32
    height: int = 64
    width: int = 64


@dataclass
class DataConfig:
    """Everything `build_dataset` needs. Field names follow the official command-line flags where one exists.

    Attributes:
        manifest: list file, CSV, folder-per-class tree, or a folder holding `train.csv`/`val.csv`/`test.csv`;
            `None` when `sources` or `synthetic` is used.
        val_manifest: validation list (default: `val.csv` beside `train.csv` in a manifest folder; else the
            training data, with a warning).
        test_manifest: test list (default: `test.csv` in a manifest folder, else the validation list).
        root: folder that relative manifest paths are joined to (default: the manifest's own folder).
        sources: hybrid pretraining sources, each with its own root, interval and frame template.
        backend: video decoder: "pyav", "decord", "torchcodec" or "auto" (fastest installed).
        frame_template: file name template of frame folders listed in `manifest`.
        start_index: number of the first frame file of frame folders listed in `manifest`.
        num_frames: frames per clip.
        sampling_rate: interval between sampled frames (dense sampling).
        input_size: side of the square crop fed to the model.
        short_side_size: short side after resizing, for validation and test views.
        sparse: segment-based (TSN) sampling instead of dense clips (official for SSv2).
        num_sample: augmented views per decoded video (repeated augmentation).
        test_num_segment: temporal views per video in the test split.
        test_num_crop: spatial views per temporal view in the test split.
        flip: random horizontal flip in fine-tuning (turn off for direction-sensitive sets such as SSv2).
        rand_augment: timm-style RandAugment spec, or None to disable.
        reprob: random-erasing probability.
        mixup: mixup alpha (0 disables).
        cutmix: cutmix alpha (0 disables).
        label_smoothing: folded into the soft targets of `MixupCutmix`.
        mask_type: encoder mask kind (see `videomae.masking`).
        mask_ratio: encoder mask ratio.
        decoder_mask_type: decoder mask kind; ignored when `decoder_mask_ratio` is 0.
        decoder_mask_ratio: 0 means "decoder reconstructs exactly the encoder-hidden tokens".
        tubelet_size: frames per token.
        patch_size: pixels per token side.
        num_workers: DataLoader worker processes.
        prefetch_memory_gb: host memory the batches prepared ahead by the workers may take, per process (decides
            the DataLoader's prefetch factor, 1 to 4 batches per worker).
        max_bad_fraction: fraction of failed samples (over the samples seen) above which loading stops.
        stream: read the training split's shard index as streamed shards (`videomae.data.stream`): each shard
            front to back, shuffled within blocks; the way to read shards from object storage.
        shuffle_buffer: samples per shuffled block of streamed shards (each worker holds up to twice as many
            encoded videos).
        labels: label file (one class name per line); otherwise classes come from the data.
        synthetic: generate data instead of reading files; used only when no manifest or source is given, so a
            user's data always wins over a recipe's built-in set.
        train_linspace: official train-time dense indices (`linspace`, stride ~4.27); False = exact stride.
        multiscale_crop_scales: scales of the pretraining multi-scale crop.
    """

    manifest: str | None = None
    val_manifest: str | None = None
    test_manifest: str | None = None
    root: str = ""
    sources: list[SourceConfig] = field(default_factory=list)
    backend: Backend = "pyav"
    frame_template: str = "img_{:05}.jpg"
    start_index: int = 1
    num_frames: int = 16
    sampling_rate: int = 4
    input_size: int = 224
    short_side_size: int = 224
    sparse: bool = False
    num_sample: int = 1
    test_num_segment: int = 5
    test_num_crop: int = 3
    flip: bool = True
    rand_augment: str | None = "rand-m7-n4-mstd0.5-inc1"
    reprob: float = 0.25
    mixup: float = 0.8
    cutmix: float = 1.0
    label_smoothing: float = 0.1
    mask_type: MaskType = "tube"
    mask_ratio: float = 0.9
    decoder_mask_type: MaskType = "running_cell"
    decoder_mask_ratio: float = 0.5
    tubelet_size: int = 2
    patch_size: int = 16
    num_workers: int = 8
    prefetch_memory_gb: float = 4.0
    max_bad_fraction: float = 0.01
    stream: bool = False
    shuffle_buffer: int = 64
    labels: str | None = None
    synthetic: SyntheticConfig | None = None
    train_linspace: bool = True
    multiscale_crop_scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)

    def __post_init__(self) -> None:
        if isinstance(self.synthetic, dict):
            self.synthetic = SyntheticConfig(**self.synthetic)
        self.sources = [SourceConfig(**s) if isinstance(s, dict) else s for s in self.sources]
        self.validate()

    @property
    def masks(self) -> MaskSpec:
        """The pretraining masks these settings describe."""
        return MaskSpec(self.mask_type, self.mask_ratio, self.decoder_mask_type, self.decoder_mask_ratio)

    @property
    def uses_synthetic(self) -> bool:
        """Generated data is the fallback when no files are named."""
        return self.synthetic is not None and self.manifest is None and not self.sources

    def validate(self) -> None:
        """Raise `DataError` for settings that cannot work, naming the setting (`data.NAME`)."""
        check_choices(self, "data.", DataError)
        for name in (
            "num_frames",
            "sampling_rate",
            "input_size",
            "short_side_size",
            "num_sample",
            "test_num_segment",
            "test_num_crop",
            "tubelet_size",
            "patch_size",
            "shuffle_buffer",
        ):
            if getattr(self, name) < 1:
                raise DataError(f"data.{name} must be at least 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise DataError(f"data.num_workers must be 0 (load in the main process) or more, got {self.num_workers}")
        for name, low, high in (
            ("max_bad_fraction", 0.0, 1.0),
            ("prefetch_memory_gb", 0.0, math.inf),
            ("reprob", 0.0, 1.0),
            ("label_smoothing", 0.0, 1.0),
            ("mask_ratio", 0.0, 0.999),
            ("decoder_mask_ratio", 0.0, 0.999),
            ("mixup", 0.0, math.inf),
            ("cutmix", 0.0, math.inf),
        ):
            value = getattr(self, name)
            if not low <= value <= high:  # also refuses NaN
                raise DataError(f"data.{name} must be in [{low:g}, {high:g}], got {value}")
        if self.stream and self.sources:
            raise DataError("data.stream=true reads one shard index (data.manifest), not data.sources")
        if self.short_side_size < self.input_size:
            raise DataError(
                f"data.short_side_size={self.short_side_size} is smaller than data.input_size="
                f"{self.input_size}; the test crops are short_side_size squares cut from the resized frame"
            )
