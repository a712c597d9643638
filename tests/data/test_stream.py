"""Streamed shards: every sample once per epoch over ranks and workers, a deterministic order, exact resume, the
items of the map-style dataset, bad members reported and replaced, and shards the `webdataset` library reads."""

from __future__ import annotations

import glob
import json
import os
import tarfile

import torch
from data_helpers import run_data_command, tiny_config

from videomae.data import build_dataset, build_loader
from videomae.data.loader import run_batches, set_epoch
from videomae.data.shards import write_shards
from videomae.data.stream import StreamDataset, batches_made, worker_share

BATCH = 2


class IndexStream(StreamDataset):
    """A spy: items carry the sample index instead of the decoded clip (the reads are real)."""

    def _item(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        return {"video": torch.zeros(1, 3, 1, 1, 1, dtype=torch.uint8), "index": torch.tensor([index])}


def stream(index: str, kind=IndexStream, **settings) -> StreamDataset:
    dataset = build_dataset(tiny_config(manifest=index, stream=True, shuffle_buffer=4, **settings), "pretrain", "train")
    return kind(dataset.dataset, dataset.shuffle_buffer, seed=0)


def consumed(dataset, epochs: int, *, first_epoch=0, rank=0, world_size=1, workers=2, start_sample=0):
    """Sample indices per epoch in the order the training engine gets them (`run_batches`: one loader whose
    workers persist across epochs)."""
    loader = build_loader(
        dataset,
        BATCH,
        shuffle=True,
        seed=0,
        num_workers=workers,
        drop_last=True,
        rank=rank,
        world_size=world_size,
        start_sample=start_sample,
    )
    per_epoch = dataset.samples_per_rank // BATCH
    counts = [per_epoch - start_sample // world_size // BATCH] + [per_epoch] * (epochs - 1)
    with run_batches(loader, first_epoch, torch.device("cpu")) as batches:
        return [[int(i) for _ in range(count) for i in next(batches)["index"]] for count in counts]


def test_two_ranks_of_two_workers_see_every_sample_once_per_epoch(shards):
    dataset = stream(shards)
    per_rank = [consumed(dataset, 2, rank=rank, world_size=2) for rank in range(2)]
    for epoch in range(2):
        seen = per_rank[0][epoch] + per_rank[1][epoch]
        assert sorted(seen) == list(range(24)) and len(per_rank[0][epoch]) == 12
    assert per_rank[0][0] != per_rank[0][1]  # a new order each epoch
    assert consumed(stream(shards), 1, first_epoch=1, rank=1, world_size=2) == [per_rank[1][1]]  # f(seed, epoch)


def test_an_epoch_resumes_exactly_where_it_stopped(shards):
    """The position is the samples of the epoch consumed over all ranks, as for map-style loaders: a new loader
    started there (another process after a kill) hands out exactly the rest of the epoch, then the next epochs."""
    full = consumed(stream(shards), 2, first_epoch=3)
    for taken in (3, 4, 7):  # batches: inside a shuffle block, at its end, in a later block
        rest = consumed(stream(shards), 2, first_epoch=3, start_sample=taken * BATCH)
        assert full[0][: taken * BATCH] + rest[0] == full[0] and rest[1] == full[1]


def test_workers_take_whole_batches_in_turn():
    assert [worker_share(12, 2, 4, w) for w in range(4)] == [(0, 4), (4, 4), (8, 2), (10, 2)]
    assert [batches_made(5, 4, w) for w in range(4)] == [2, 1, 1, 1]


def test_items_are_those_of_the_map_style_dataset(shards):
    """The same frames, crops and masks as the map-style dataset gives the same sample in the same epoch."""
    order = consumed(stream(shards), 1, first_epoch=2, workers=0)[0][:4]
    dataset = stream(shards, StreamDataset)
    loader = build_loader(dataset, BATCH, shuffle=True, seed=0, num_workers=0, drop_last=True)
    set_epoch(loader, 2)
    batches = iter(loader)
    videos = torch.cat([next(batches)["video"] for _ in range(2)])
    assert torch.equal(videos, torch.cat([dataset.dataset[(2, i)]["video"] for i in order]))


def test_a_bad_member_is_reported_and_replaced(clip_bytes, tmp_path):
    items = [(f"clip{i:02d}", clip_bytes[i % len(clip_bytes)], 0) for i in range(8)]
    items[5] = ("clip05", b"not a video" * 100, 0)
    index = write_shards(items, str(tmp_path / "shards"), max_per_shard=3)
    dataset = build_dataset(
        tiny_config(manifest=index, stream=True, shuffle_buffer=4, max_bad_fraction=0.5),
        "pretrain",
        "train",
        report_dir=str(tmp_path),
    )
    loader = build_loader(dataset, BATCH, shuffle=True, seed=0, num_workers=0, drop_last=True)
    set_epoch(loader, 0)
    assert sum(batch["video"].shape[0] for batch in loader) == 8  # the epoch keeps its length
    with open(tmp_path / "bad_files.jsonl", encoding="utf-8") as handle:
        assert [json.loads(line)["path"] for line in handle] == [str(tmp_path / "shards" / "shard-000001.tar#clip05")]


def test_streams_from_an_http_server_in_ranged_blocks(shards):
    """Remote shards stream in ranged blocks: the order and samples of the local copy, in fewer requests than
    samples (one ranged read per run of samples of one shard, and the shard's size once per worker)."""
    from servers import serve_folder

    local = consumed(stream(shards), 1)
    with serve_folder(os.path.dirname(shards)) as server:
        streamed = stream(f"{server.url}/index.csv")
        before = server.requests
        assert consumed(streamed, 1) == local
        assert server.requests - before < 24


def test_prepared_shards_are_read_by_webdataset(dataset_folder):
    """`videomae data prepare --shards` writes WebDataset shards: the library groups each sample's members."""
    import webdataset

    with open(os.path.join(dataset_folder, "shards", "index.csv"), encoding="utf-8") as handle:
        rows = [line.strip().split(",") for line in handle][1:]
    tars = sorted(glob.glob(os.path.join(dataset_folder, "shards", "*.tar")))
    samples = list(webdataset.WebDataset(tars, shardshuffle=False, empty_check=False))
    assert [(s["__key__"], int(s["cls"])) for s in samples] == [(row[0], int(row[4])) for row in rows]
    for sample, row in zip(samples, rows):
        with open(os.path.join(dataset_folder, "shards", row[1]), "rb") as shard:
            shard.seek(int(row[2]))
            assert sample["mp4"] == shard.read(int(row[3]))


def test_foreign_webdataset_shards_are_indexed_and_streamed(clip_bytes, tmp_path):
    """Shards written by the `webdataset` library (labels in `<key>.cls` only) get an index (`videomae data
    index`), then stream."""
    import webdataset

    os.makedirs(tmp_path / "wds")
    for shard in range(2):
        with webdataset.TarWriter(str(tmp_path / "wds" / f"part-{shard}.tar")) as writer:
            for i in range(3):
                key = f"sample{shard * 3 + i}"
                writer.write({"__key__": key, "mp4": clip_bytes[i], "cls": shard, "json": {"note": "skipped"}})
    index = str(tmp_path / "wds" / "index.csv")
    assert run_data_command(["data", "index", *sorted(glob.glob(str(tmp_path / "wds" / "*.tar"))), "--out", index]) == 0
    dataset = build_dataset(tiny_config(manifest=index, stream=True), "finetune", "train")
    assert [(s.key, s.label) for s in dataset.samples] == [(f"sample{i}", i // 3) for i in range(6)]
    loader = build_loader(dataset, 3, shuffle=True, seed=0, num_workers=0, drop_last=True)
    set_epoch(loader, 0)
    assert sorted(int(label) for batch in loader for label in batch["label"]) == [0, 0, 0, 1, 1, 1]
    assert tarfile.is_tarfile(tmp_path / "wds" / "part-0.tar")
