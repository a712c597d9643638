"""Video data: manifests, decoders, official sampling, augmentation, masks, bad-file handling and loaders.

Public API (see docs/data.md):
    DataConfig, SourceConfig, SyntheticConfig   typed settings
    build_dataset(cfg, stage, split, seed=, report_dir=)   -> Dataset with set_epoch()
    build_loader(dataset, batch_size, ...)      -> DataLoader (call loader.sampler.set_epoch(epoch))
    collate_views                               view-flattening collate
    MixupCutmix                                 batch Mixup/CutMix with label smoothing
    open_video, FrameFolderReader               decoders
    BadFileReport                               bad-file counting and report
    write_synthetic_videos                      synthetic .mp4 set + manifest
"""

from videomae.data.badfiles import BadFileReport, replacement_index
from videomae.data.build import build_dataset
from videomae.data.config import DataConfig, SourceConfig, SyntheticConfig
from videomae.data.decoders import DecodeError, FrameFolderReader, VideoReader, installed_backends, open_video
from videomae.data.loader import ShardedSampler, build_loader, collate_views
from videomae.data.manifests import Manifest, Sample, read_manifest
from videomae.data.synthetic import synthetic_frames, write_synthetic_videos
from videomae.data.transforms import IMAGENET_MEAN, IMAGENET_STD, MixupCutmix

__all__ = [
    "BadFileReport", "DataConfig", "DecodeError", "FrameFolderReader", "IMAGENET_MEAN", "IMAGENET_STD", "Manifest",
    "MixupCutmix", "Sample", "ShardedSampler", "SourceConfig", "SyntheticConfig", "VideoReader", "build_dataset",
    "build_loader", "collate_views", "installed_backends", "open_video", "read_manifest", "replacement_index",
    "synthetic_frames", "write_synthetic_videos",
]
