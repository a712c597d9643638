"""Datasets end to end on real encoded files, frame folders and synthetic data."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from data_helpers import tiny_config, write_lines

from videomae.data import SourceConfig, SyntheticConfig, build_dataset, build_loader, write_synthetic_videos
from videomae.data.badfiles import REPORT_NAME
from videomae.data.datasets import FRAMES_STREAM
from videomae.data.sampling import pretrain_indices
from videomae.errors import DataError
from videomae.masking import token_grid
from videomae.seeding import numpy_generator


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> tuple[str, str]:
    out = str(tmp_path_factory.mktemp("synthetic"))
    return out, write_synthetic_videos(out, num_videos=6, num_classes=3, num_frames=20, height=48, width=64)


def synthetic_cfg(**overrides):
    return tiny_config(
        synthetic=SyntheticConfig(num_videos=8, num_classes=4, num_frames=24, height=48, width=48), **overrides
    )


def test_pretrain_item_shapes_and_masks():
    cfg = synthetic_cfg(num_sample=3)
    item = build_dataset(cfg, "pretrain", "train")[0]
    n = int(np.prod(token_grid(4, (32, 32), 2, 16)))
    assert item["video"].shape == (3, 3, 4, 32, 32) and item["video"].dtype == torch.uint8  # normalised on device
    assert item["encoder_mask"].shape == item["decoder_mask"].shape == (3, n)
    assert item["encoder_mask"].dtype == torch.bool
    hidden = item["encoder_mask"].sum(1)[0]
    assert item["visible_idx"].shape == (3, n - hidden)  # the masks' static-shape form, made in the worker
    assert torch.equal(torch.gather(item["encoder_mask"], 1, item["visible_idx"]), torch.zeros(3, n - hidden).bool())
    reconstructed = torch.gather(item["decoder_mask"], 1, item["predicted_idx"])
    assert not reconstructed.any() and torch.equal(
        item["loss_weight"], torch.gather(item["encoder_mask"], 1, item["predicted_idx"])
    )
    assert not torch.equal(item["video"][0], item["video"][1]) or not torch.equal(item["video"][1], item["video"][2])


def test_decoder_mask_is_complement_when_ratio_zero():
    item = build_dataset(synthetic_cfg(decoder_mask_ratio=0.0), "pretrain", "train")[1]
    assert torch.equal(item["decoder_mask"], ~item["encoder_mask"])


def test_items_depend_on_seed_epoch_index_only():
    cfg = synthetic_cfg(num_sample=2)
    first, second = build_dataset(cfg, "pretrain", "train", seed=3), build_dataset(cfg, "pretrain", "train", seed=3)
    second.set_epoch(1)
    assert torch.equal(first[2]["video"], second[(0, 2)]["video"])
    assert not torch.equal(first[(1, 2)]["encoder_mask"], first[(0, 2)]["encoder_mask"]) or not torch.equal(
        first[(1, 2)]["video"], first[(0, 2)]["video"]
    )


def test_loader_output_is_independent_of_worker_count():
    dataset = build_dataset(synthetic_cfg(num_sample=2), "finetune", "train", seed=1)
    batches = {}
    for workers in (0, 2):
        loader = build_loader(dataset, 2, shuffle=True, seed=5, num_workers=workers, drop_last=True)
        loader.sampler.set_epoch(2)
        batches[workers] = list(loader)
    assert len(batches[0]) == 4
    for a, b in zip(batches[0], batches[2]):
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["label"], b["label"])
        assert a["video"].shape == (4, 3, 4, 32, 32)


def test_finetune_from_real_videos_all_splits(synthetic_dir):
    out, manifest = synthetic_dir
    cfg = tiny_config(
        manifest=manifest, root=out, num_sample=2, test_num_segment=2, test_num_crop=3, short_side_size=32
    )
    train = build_dataset(cfg, "finetune", "train")
    assert train.num_classes == 3 and train.class_names is None
    item = train[4]
    assert item["video"].shape == (2, 3, 4, 32, 32) and item["label"].tolist() == [1, 1]
    val = build_dataset(cfg, "finetune", "val")
    assert set(val[0]) == {"video", "label", "video_index", "view"}
    test = build_dataset(cfg, "finetune", "test")
    assert len(test) == 6 * 6
    item = test[6 * 5 + 2]  # view 5 (segment 1, crop 2) of video 2
    assert (item["video_index"].item(), item["view"].item(), item["label"].item()) == (2, 5, 2)
    assert item["video"].shape == (1, 3, 4, 32, 32)


def test_folder_tree_gives_class_names(synthetic_dir):
    out, _ = synthetic_dir
    dataset = build_dataset(tiny_config(manifest=out), "finetune", "val")
    assert dataset.class_names == ["000_dir", "001_dir", "002_dir"] and dataset.num_classes == 3


def test_hybrid_sources_use_their_own_interval(synthetic_dir, frame_folder, tmp_path):
    out, manifest = synthetic_dir
    folder, _ = frame_folder
    frames_list = write_lines(tmp_path / "frames.txt", [f"{folder} 1 12"])
    cfg = tiny_config(
        sources=[
            SourceConfig(manifest=manifest, root=out, sampling_rate=4),
            SourceConfig(manifest=frames_list, sampling_rate=2, frame_template="img_{:05}.png"),
        ]
    )
    dataset = build_dataset(cfg, "pretrain", "train")
    assert [s.sampling_rate for s in dataset.samples] == [4] * 6 + [2]
    assert dataset[6]["video"].shape == (1, 3, 4, 32, 32)


def test_frame_folder_sparse_finetune(frame_folder, tmp_path):
    folder, _ = frame_folder
    listing = write_lines(tmp_path / "ft.txt", [f"{folder} 12 0", f"{folder} 12 1"])
    cfg = tiny_config(manifest=listing, sparse=True, frame_template="img_{:05}.png", flip=False)
    assert build_dataset(cfg, "finetune", "train")[1]["label"].tolist() == [1]


def test_bad_files_are_replaced_reported_and_counted(synthetic_dir, broken_videos, tmp_path):
    out, manifest = synthetic_dir
    rows = [
        f"{os.path.join(out, '000_dir/video_00000.mp4')} 0 -1",
        f"{broken_videos['garbage']} 0 -1",
        f"{os.path.join(out, '001_dir/video_00001.mp4')} 0 -1",
        f"{broken_videos['missing']} 0 -1",
    ]
    listing = write_lines(tmp_path / "pt.txt", rows)
    report_dir = tmp_path / "run"
    dataset = build_dataset(tiny_config(manifest=listing), "pretrain", "train", report_dir=str(report_dir))
    items = [dataset[i]["video"] for i in range(4)] + [dataset[1]["video"]]
    assert torch.equal(items[1], items[4])  # the same deterministic replacement each time
    report = [json.loads(line) for line in open(report_dir / REPORT_NAME)]
    assert sorted(r["path"] for r in report) == sorted([broken_videos["garbage"], broken_videos["missing"]])
    assert {r["reason"].split(":")[0] for r in report} == {"cannot open", "missing file"}
    assert dataset.bad_files.summary()["bad_files"] == 2 and dataset.bad_files.failures == 3


def test_too_many_bad_files_stop_with_clear_error(broken_videos, synthetic_dir, tmp_path):
    out, _ = synthetic_dir
    good = os.path.join(out, "000_dir/video_00000.mp4")
    listing = write_lines(
        tmp_path / "pt.txt", [f"{good} 0 -1"] + [f"{broken_videos[k]} 0 -1" for k in ("empty", "garbage", "truncated")]
    )
    dataset = build_dataset(tiny_config(manifest=listing, max_bad_fraction=0.3), "pretrain", "train")
    with pytest.raises(DataError, match="max_bad_fraction"):
        for i in range(4):
            dataset[i]


def test_pretrain_clip_uses_official_indices(tmp_path):
    """Uniform frames whose grey level is 20 x their index: the clip shows the official frame indices."""
    from PIL import Image

    folder = tmp_path / "uniform"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((48, 64, 3), 20 * i, dtype=np.uint8)).save(folder / f"img_{i + 1:05}.png")
    listing = write_lines(tmp_path / "pt.txt", [f"{folder} 1 12"])
    cfg = tiny_config(manifest=listing, frame_template="img_{:05}.png", num_frames=4, sampling_rate=3)
    video = build_dataset(cfg, "pretrain", "train", seed=7)[0]["video"][0]  # (3, T, 32, 32)
    expected = pretrain_indices(12, 4, 3, numpy_generator(7, 0, 0, FRAMES_STREAM))
    np.testing.assert_array_equal(video[0, :, 0, 0].numpy(), 20 * expected)  # (T,) red channel, uint8 pixels


def test_missing_data_settings():
    with pytest.raises(DataError, match="no data"):
        build_dataset(tiny_config(), "pretrain", "train")
    with pytest.raises(DataError, match="stage must be"):
        build_dataset(synthetic_cfg(), "eval", "train")


def test_splits_read_their_own_lists_and_say_when_they_reuse_the_training_videos(synthetic_dir, tmp_path, caplog):
    folder, manifest = synthetic_dir
    rows = open(manifest).read().splitlines()
    lists = tmp_path / "lists"
    lists.mkdir()
    write_lines(lists / "train.csv", [rows[0]] + [os.path.join(folder, r) for r in rows[1:5]])
    write_lines(lists / "val.csv", [rows[0]] + [os.path.join(folder, r) for r in rows[5:]])
    in_folder = tiny_config(manifest=str(lists))
    sizes = {split: len(build_dataset(in_folder, "finetune", split).samples) for split in ("train", "val", "test")}
    assert sizes == {"train": 4, "val": 2, "test": 2} and "reuses the training videos" not in caplog.text
    explicit = tiny_config(manifest=str(lists / "train.csv"), test_manifest=str(lists / "val.csv"))
    assert len(build_dataset(explicit, "finetune", "test").samples) == 2
    assert "reuses the training videos" not in caplog.text
    assert len(build_dataset(explicit, "finetune", "val").samples) == 4
    assert "the val split has no list of its own, so it reuses the training videos" in caplog.text


def test_a_manifest_wins_over_the_recipes_synthetic_data(synthetic_dir):
    folder, manifest = synthetic_dir
    cfg = synthetic_cfg(manifest=manifest)
    dataset = build_dataset(cfg, "finetune", "train")
    assert len(dataset) == 6 and dataset.samples[0].path.startswith(folder)
    expected = build_dataset(tiny_config(manifest=manifest), "finetune", "train", seed=0)[0]["video"]
    assert torch.equal(dataset[0]["video"], expected)  # decoded from the files, not generated
