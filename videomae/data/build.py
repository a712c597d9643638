"""`build_dataset`: from a `DataConfig` to a pretraining or fine-tuning dataset."""

from __future__ import annotations

import logging

from torch.utils.data import Dataset

from videomae.data import remote
from videomae.data.config import DataConfig
from videomae.data.datasets import FinetuneDataset, PretrainDataset
from videomae.data.decoders import resolve_backend
from videomae.data.manifests import Manifest, Sample, read_manifest, with_source
from videomae.data.synthetic import class_folder, synthetic_label
from videomae.errors import DataError

logger = logging.getLogger("videomae.data")

STAGES = ("pretrain", "finetune")
SPLITS = ("train", "val", "test")


def list_in_folder(manifest: str, split: str) -> str | None:
    """`manifest/<split>.csv` when `manifest` is a folder holding the official per-split lists."""
    candidate = remote.join(manifest, f"{split}.csv")
    return candidate if remote.isdir(manifest) and remote.isfile(candidate) else None


def split_manifest(manifest: str, split: str) -> str:
    """The split's list inside a folder of per-split lists; any other manifest as it is."""
    return list_in_folder(manifest, split) or manifest


def manifest_of_split(cfg: DataConfig, split: str) -> tuple[str, bool]:
    """(the list a split reads, whether that list is the training data's).

    val: `val_manifest`, else `val.csv` in a manifest folder; test: `test_manifest`, else `test.csv`, else the
    validation list (as the official code). A split with no list of its own reuses the training data.
    """
    train = split_manifest(cfg.manifest, "train")
    if split == "train":
        return train, False
    val = [cfg.val_manifest, list_in_folder(cfg.manifest, "val")]
    candidates = val if split == "val" else [cfg.test_manifest, list_in_folder(cfg.manifest, "test")] + val
    own = next((path for path in candidates if path), None)
    return (own, False) if own else (train, True)


def _synthetic_manifest(cfg: DataConfig) -> Manifest:
    synthetic = cfg.synthetic
    samples = [
        Sample(
            f"synthetic:{i}",
            label=synthetic_label(i, synthetic.num_classes),
            key=f"synthetic_{i:06d}",
            sampling_rate=cfg.sampling_rate,
        )
        for i in range(synthetic.num_videos)
    ]
    return Manifest(samples, [class_folder(k) for k in range(synthetic.num_classes)])


def _file_manifest(cfg: DataConfig, stage: str, split: str) -> Manifest:
    if cfg.sources:
        if stage != "pretrain":
            raise DataError("data sources (hybrid sets) are for pretraining; fine-tuning takes one manifest")
        samples: list[Sample] = []
        for source in cfg.sources:
            found = read_manifest(source.manifest, source.root, stage)
            samples += with_source(found.samples, source.sampling_rate, source.frame_template, source.start_index)
            logger.info(
                "source %s: %d samples, sampling interval %d", source.manifest, len(found.samples), source.sampling_rate
            )
        return Manifest(samples)
    if cfg.manifest is None:
        raise DataError("no data: set data.manifest, data.sources, or data.synthetic")
    manifest, reused = manifest_of_split(cfg, split)
    if reused:
        logger.warning(
            "warning: the %s split has no list of its own, so it reuses the training videos (%s) and its "
            "accuracy is not a held-out measure; set data.%s_manifest, or prepare the data with "
            "`videomae data prepare --val-fraction`",
            split,
            manifest,
            split,
        )
    found = read_manifest(manifest, cfg.root, stage, cfg.labels)
    return Manifest(
        with_source(found.samples, cfg.sampling_rate, cfg.frame_template, cfg.start_index), found.class_names
    )


def _num_classes(manifest: Manifest) -> int:
    """From the class names when the data names them, else the largest label + 1."""
    if manifest.class_names is not None:
        return len(manifest.class_names)
    labels = [s.label for s in manifest.samples]
    if min(labels) < 0:
        raise DataError("fine-tuning needs a label for every sample; the manifest has unlabelled rows")
    return max(labels) + 1


def build_dataset(cfg: DataConfig, stage: str, split: str, *, seed: int = 0, report_dir: str | None = None) -> Dataset:
    """The dataset of a stage and split.

    Args:
        cfg: data settings (manifest, hybrid sources, or synthetic).
        stage: "pretrain" or "finetune".
        split: "train", "val" or "test" (pretraining ignores it).
        seed: base seed; every random draw is a function of (seed, epoch, index, view).
        report_dir: folder for `bad_files.jsonl`; None keeps the bad-file report in memory.

    Returns:
        A map-style dataset with `set_epoch`, `video_ids`, and for fine-tuning `num_classes`/`class_names`; with
        `cfg.stream`, the training split is a `StreamDataset` over it (same attributes).

    Raises:
        DataError: unknown stage or split, missing or malformed manifest, unusable settings.
    """
    if stage not in STAGES or split not in SPLITS:
        raise DataError(f"stage must be one of {STAGES} and split one of {SPLITS}, got {stage!r}, {split!r}")
    if cfg.uses_synthetic:
        manifest = _synthetic_manifest(cfg)
        logger.info(
            "synthetic data: %d moving-square videos, %d classes", len(manifest.samples), cfg.synthetic.num_classes
        )
    else:
        logger.info("video backend: %s (configured %r)", resolve_backend(cfg.backend), cfg.backend)
        manifest = _file_manifest(cfg, stage, split)
    if stage == "pretrain":
        dataset = PretrainDataset(manifest.samples, cfg, split, seed, report_dir)
    else:
        dataset = FinetuneDataset(
            manifest.samples,
            cfg,
            split,
            seed,
            report_dir,
            num_classes=_num_classes(manifest),
            class_names=manifest.class_names,
        )
    if cfg.stream and split == "train" and not cfg.uses_synthetic:
        from videomae.data.stream import StreamDataset

        return StreamDataset(dataset, cfg.shuffle_buffer, seed)
    return dataset
