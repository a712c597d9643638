"""Video data: manifests, decoders, official sampling, augmentation, masks, bad-file handling and loaders.

Public API (see docs/data.md):
    DataConfig, SourceConfig, SyntheticConfig   typed settings
    build_dataset(cfg, stage, split, seed=, report_dir=)   -> Dataset with set_epoch()
    build_loader(dataset, batch_size, ...)      -> DataLoader (call loader.sampler.set_epoch(epoch))
    StreamDataset                               streamed tar shards (data.stream=true)
    collate_views                               view-flattening collate
    MixupCutmix                                 batch Mixup/CutMix with label smoothing
    open_video, FrameFolderReader               decoders
    BadFileReport                               bad-file counting and report
    write_synthetic_videos                      synthetic .mp4 set + manifest
"""

from videomae.lazy import lazy_exports

# Names exported here, imported on first use: the transforms pull in torchvision, which decoding, manifests and
# the synthetic writer do not need (`import videomae.data.decoders` stays light).
_EXPORTS = {
    "BadFileReport": "badfiles",
    "replacement_index": "badfiles",
    "build_dataset": "build",
    "DataConfig": "config",
    "SourceConfig": "config",
    "SyntheticConfig": "config",
    "DecodeError": "decoders",
    "FrameFolderReader": "decoders",
    "VideoReader": "decoders",
    "installed_backends": "decoders",
    "open_video": "decoders",
    "ShardedSampler": "loader",
    "build_loader": "loader",
    "collate_views": "loader",
    "Manifest": "manifests",
    "Sample": "manifests",
    "read_manifest": "manifests",
    "StreamDataset": "stream",
    "synthetic_frames": "synthetic",
    "write_synthetic_videos": "synthetic",
    "IMAGENET_MEAN": "transforms",
    "IMAGENET_STD": "transforms",
    "MixupCutmix": "transforms",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
