"""Map-style datasets for pretraining and fine-tuning, with repeated views, masks and bad-file replacement.

An item key is either a sample index (using the epoch set by `set_epoch`) or an `(epoch, index)` pair, which
is what `ShardedSampler` yields: the epoch then travels with the index, so persistent DataLoader workers
(which hold their own copy of the dataset) see the right epoch without being told.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from videomae.data import remote, sampling, transforms
from videomae.data.badfiles import BadFileReport, replacement_index
from videomae.data.config import DataConfig
from videomae.data.decoders import DecodeError, FrameFolderReader, SegmentReader, VideoReader, open_video
from videomae.data.manifests import VIDEO_EXTENSIONS, Sample
from videomae.data.synthetic import SyntheticReader
from videomae.errors import DataError
from videomae.masking import mask_indices, token_grid
from videomae.seeding import derive_seed, numpy_generator, torch_generator

MAX_REPLACEMENTS = 20
# Independent random streams per (seed, epoch, index): which frames, which augmentation, which masks.
FRAMES_STREAM, AUGMENT_STREAM, MASK_STREAM = 0, 1, 2


def read_byte_range(path: str, offset: int, size: int) -> bytes:
    """`size` bytes of `path` from `offset` (one member of a tar shard, local or remote)."""
    if not remote.is_remote(path) and not os.path.isfile(path):
        raise DecodeError("missing shard file")
    data = remote.read_bytes(path, offset, size)
    if len(data) != size:
        raise DecodeError(f"truncated shard: wanted {size} bytes at {offset}, got {len(data)}")
    return data


def is_frame_folder(path: str) -> bool:
    """A folder of frame images rather than a video file. Remote stores are not asked (a request per sample, and
    HTTP cannot tell): there a path without a video extension is a frame folder."""
    return not path.lower().endswith(VIDEO_EXTENSIONS) if remote.is_remote(path) else os.path.isdir(path)


def source_name(sample: Sample) -> str:
    """What the bad-file report names: the file, or `SHARD#KEY` for one member of a tar shard."""
    return f"{sample.path}#{sample.key}" if sample.byte_range is not None else sample.path


def open_sample(sample: Sample, backend: str, threads: int = 1, data: bytes | None = None) -> VideoReader:
    """A reader for a manifest entry: a video file, a frame folder, or a video inside a tar shard (local or
    remote; remote videos are fetched whole and decoded from memory). `data`: the video's bytes, already read
    (streamed shards)."""
    try:
        if data is not None:
            reader = open_video(data, backend, threads)
        elif sample.byte_range is not None:
            reader = open_video(read_byte_range(sample.path, *sample.byte_range), backend, threads)
        elif is_frame_folder(sample.path):
            reader = FrameFolderReader(sample.path, sample.frame_template, sample.start_index or 0, sample.num_frames)
        elif remote.is_remote(sample.path):
            reader = open_video(remote.read_bytes(sample.path), backend, threads)
        else:
            reader = open_video(sample.path, backend, threads)
    except remote.RemoteError as error:  # after the retries: a bad sample like any other
        raise DecodeError(error.reason, sample.path) from error
    if sample.segment is not None:
        reader = SegmentReader(reader, *sample.segment)
    return reader


class VideoDataset(Dataset):
    """Base: sample list, epoch, reader opening and the replace-on-failure loop.

    Args:
        samples: manifest entries.
        cfg: data settings.
        split: "train", "val" or "test".
        seed: base seed; every draw is a function of (seed, epoch, index, view).
        report_dir: folder of the bad-file report.
    """

    def __init__(
        self, samples: list[Sample], cfg: DataConfig, split: str, seed: int = 0, report_dir: str | None = None
    ):
        if not samples:
            raise DataError("the dataset has no samples")
        self.samples, self.cfg, self.split, self.seed = samples, cfg, split, seed
        self.epoch = 0
        self.bad_files = BadFileReport(len(samples), cfg.max_bad_fraction, report_dir)
        self.video_ids = [s.key or s.path for s in samples]
        self.fetched: dict[int, bytes] = {}  # encoded videos already read, by sample index (streamed shards)

    pixel_bytes = 1  # clips leave the workers as uint8 pixels (normalised on the device)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for items requested by plain index."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def _split_key(self, key: int | tuple[int, int]) -> tuple[int, int]:
        if isinstance(key, (tuple, list)):
            return int(key[0]), int(key[1])
        return self.epoch, int(key)

    def open_reader(self, index: int) -> VideoReader:
        """Reader of sample `index`."""
        if self.cfg.uses_synthetic:
            return SyntheticReader(self.cfg.synthetic, index, self.seed)
        return open_sample(self.samples[index], self.cfg.backend, data=self.fetched.get(index))

    def load_robustly(self, epoch: int, index: int, load) -> dict[str, torch.Tensor]:
        """`load(epoch, index)`, replacing a bad file by a deterministic other sample until one works."""
        current = index
        for attempt in range(MAX_REPLACEMENTS):
            path = source_name(self.samples[current])
            if not self.bad_files.is_known_bad(path):
                try:
                    return load(epoch, current)
                except DecodeError as error:  # readers turn every failure inside them into one
                    self.bad_files.record(path, error.reason, current)
            else:
                self.bad_files.failures += 1
            current = replacement_index(self.seed, epoch, index, attempt, len(self.samples))
        raise DataError(
            f"sample {index} and {MAX_REPLACEMENTS - 1} replacements all failed to load; "
            f"see the bad-file report ({self.bad_files.summary()['bad_files']} bad files so far)"
        )

    def read_frames(self, index: int, pick) -> np.ndarray:
        """Frames `pick(num_frames)` of sample `index` as uint8 (T, H, W, 3); the file is closed afterwards."""
        reader = self.open_reader(index)
        try:
            return reader.read(pick(reader.num_frames))
        finally:
            reader.close()


class PretrainDataset(VideoDataset):
    """Pretraining clips: `num_sample` multi-scale-cropped views of one decoded clip, each with its own masks.

    Item: {"video": uint8 (V, 3, T, S, S), "encoder_mask": (V, N) bool, "decoder_mask": (V, N) bool, and their
    static-shape form `videomae.masking.mask_indices`: "visible_idx", "predicted_idx", "loss_weight"}.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        self.grid = token_grid(cfg.num_frames, (cfg.input_size, cfg.input_size), cfg.tubelet_size, cfg.patch_size)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = self._split_key(key)
        return self.load_robustly(epoch, index, self._load)

    def _load(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        cfg, rate = self.cfg, self.samples[index].sampling_rate
        rng = numpy_generator(self.seed, epoch, index, FRAMES_STREAM)
        frames = self.read_frames(index, lambda n: sampling.pretrain_indices(n, cfg.num_frames, rate, rng))
        views = [
            transforms.pretrain_pixels(
                frames,
                cfg.input_size,
                cfg.multiscale_crop_scales,
                numpy_generator(self.seed, epoch, index, AUGMENT_STREAM, view),
            )
            for view in range(cfg.num_sample)
        ]
        encoder_mask, decoder_mask = self.masks(epoch, index)
        masks = {"encoder_mask": encoder_mask, "decoder_mask": decoder_mask}
        return {"video": torch.stack(views), **masks, **mask_indices(encoder_mask, decoder_mask)}

    def masks(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder and decoder masks for the `num_sample` views: two (V, N) bool tensors."""
        generator = torch_generator(self.seed, epoch, index, MASK_STREAM)
        return self.cfg.masks.sample(self.cfg.num_sample, self.grid, generator=generator)


class FinetuneDataset(VideoDataset):
    """Labelled clips for fine-tuning and evaluation.

    train: {"video": float32 (V, 3, T, S, S), normalised, "label": (V,)}, V = num_sample augmented views of one
    decoded clip.
    val: the centred clip, {"video": uint8 (1, 3, T, S, S), "label", "video_index", "view"}.
    test: one item per (temporal view, crop, video) in the official order; `view = segment·crops + crop`.

    Args:
        num_classes: width of the classifier.
        class_names: names when the data provides them.
    """

    def __init__(
        self,
        samples: list[Sample],
        cfg: DataConfig,
        split: str,
        seed: int = 0,
        report_dir: str | None = None,
        *,
        num_classes: int,
        class_names: list[str] | None = None,
    ):
        super().__init__(samples, cfg, split, seed, report_dir)
        self.num_classes, self.class_names = num_classes, class_names
        self.views_per_video = cfg.test_num_segment * cfg.test_num_crop if split == "test" else 1
        self.pixel_bytes = 4 if split == "train" else 1  # training augmentation ends in normalised float32
        self._augment = (
            transforms.finetune_train_transform(cfg.input_size, cfg.rand_augment, cfg.flip, cfg.reprob)
            if split == "train"
            else None
        )

    def __len__(self) -> int:
        return len(self.samples) * self.views_per_video

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, item = self._split_key(key)
        view, index = divmod(item, len(self.samples))  # official order: all videos of view 0, then view 1, ...
        load = {"train": self._load_train, "val": self._load_val, "test": self._load_test}[self.split]
        return self.load_robustly(epoch, index, lambda e, i: load(e, i, view))

    def _train_indices(self, index: int, n: int, rng: np.random.Generator | None) -> np.ndarray:
        """Training clip (random `rng`) or validation clip (`rng=None`) of sample `index` with `n` frames."""
        cfg = self.cfg
        if cfg.sparse and is_frame_folder(self.samples[index].path):  # frame folders: TSN segments
            return sampling.segment_indices(n, cfg.num_frames, rng)
        if cfg.sparse:  # decoded videos: the official dense code with span 1
            return sampling.video_segment_indices(n, cfg.num_frames, rng)
        if rng is None:
            return sampling.dense_val_indices(n, cfg.num_frames, cfg.sampling_rate, cfg.train_linspace)
        return sampling.dense_train_indices(n, cfg.num_frames, cfg.sampling_rate, rng, cfg.train_linspace)

    def _item(self, index: int, videos: list[torch.Tensor], view: int) -> dict[str, torch.Tensor]:
        label = self.samples[index].label
        out = {"video": torch.stack(videos), "label": torch.full((len(videos),), label, dtype=torch.long)}
        if self.split != "train":
            out["video_index"] = torch.tensor([index], dtype=torch.long)
            out["view"] = torch.tensor([view], dtype=torch.long)
        return out

    def _load_train(self, epoch: int, index: int, view: int) -> dict[str, torch.Tensor]:
        rng = numpy_generator(self.seed, epoch, index, FRAMES_STREAM)
        frames = self.read_frames(index, lambda n: self._train_indices(index, n, rng))
        videos = [
            transforms.apply_seeded(self._augment, frames, derive_seed(self.seed, epoch, index, AUGMENT_STREAM, v))
            for v in range(self.cfg.num_sample)
        ]
        return self._item(index, videos, view)

    def _load_val(self, epoch: int, index: int, view: int) -> dict[str, torch.Tensor]:
        frames = self.read_frames(index, lambda n: self._train_indices(index, n, None))
        return self._item(index, [transforms.val_pixels(frames, self.cfg.short_side_size, self.cfg.input_size)], view)

    def _load_test(self, epoch: int, index: int, view: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        segment, crop = divmod(view, cfg.test_num_crop)

        frames = self.read_frames(
            index,
            lambda n: sampling.test_indices(
                n, cfg.num_frames, cfg.sampling_rate, cfg.sparse, segment, cfg.test_num_segment
            ),
        )
        return self._item(
            index, [transforms.multiview_pixels(frames, cfg.short_side_size, crop, cfg.test_num_crop)], view
        )
