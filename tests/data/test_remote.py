"""Remote data against real servers on this machine: a local S3-compatible server (moto, through s3fs) and an HTTP
server (fsspec's HTTP filesystem over aiohttp): manifests, videos, frame folders, shards by byte range, retries,
time limits, missing packages, remote weights and the refusal of a remote output folder."""

from __future__ import annotations

import importlib.util
import json
import os
import time

import pytest
import torch
from data_helpers import tiny_config

from videomae.data import build_dataset
from videomae.data import remote as remote_module
from videomae.errors import ConfigError, DataError

STORES = ["s3", "http"]


@pytest.fixture(params=STORES)
def store(request) -> str:
    """The base URL of the test data set in each kind of store."""
    return request.getfixturevalue("s3_store") if request.param == "s3" else request.getfixturevalue("http_store").url


def assert_same_items(remote_set, local_set, indices=range(3)):
    assert [s.key for s in remote_set.samples] == [s.key for s in local_set.samples]
    assert [s.label for s in remote_set.samples] == [s.label for s in local_set.samples]
    for index in indices:
        assert torch.equal(remote_set[index]["video"], local_set[index]["video"])


@pytest.mark.parametrize("manifest", ["manifest.csv", "shards/index.csv", "frames.csv", ""])
def test_remote_manifests_read_as_local_ones(store, dataset_folder, manifest):
    """A CSV (relative paths resolve against the manifest's URL), a shard index (byte-range reads), frame folders
    and a folder-per-class tree give the items of the local copy."""
    if manifest == "" and store.startswith("http"):
        manifest = "./"  # a web server lists folders whose URL ends with /
    settings = dict(labels=None) if manifest != "frames.csv" else dict(labels=None, frame_template="img_{:05}.png")
    remote_set = build_dataset(tiny_config(manifest=f"{store}/{manifest}", **settings), "finetune", "test")
    local_set = build_dataset(
        tiny_config(manifest=os.path.join(dataset_folder, manifest), **settings), "finetune", "test"
    )
    assert remote_set.samples[0].path.startswith(store)
    assert remote_set.num_classes == local_set.num_classes
    assert_same_items(remote_set, local_set, range(min(3, len(local_set))))


def test_transient_failures_are_retried(http_store, monkeypatch):
    monkeypatch.setenv("VIDEOMAE_REMOTE_BACKOFF_S", "0.01")
    http_store.faults["manifest.csv"] = ["error", "error"]  # two 503s, then the file
    dataset = build_dataset(tiny_config(manifest=f"{http_store.url}/manifest.csv"), "finetune", "test")
    assert len(dataset.samples) == 8 and not http_store.faults["manifest.csv"]


def test_a_failing_or_hanging_video_is_reported_bad_and_replaced(http_store, tmp_path, monkeypatch):
    """After the retries a video that keeps failing, and one whose server stops answering (a time limit per
    read, never a hung run), are bad files like undecodable ones: reported, replaced."""
    monkeypatch.setenv("VIDEOMAE_REMOTE_BACKOFF_S", "0.01")
    monkeypatch.setenv("VIDEOMAE_REMOTE_RETRIES", "1")
    monkeypatch.setenv("VIDEOMAE_REMOTE_TIMEOUT_S", "0.5")
    cfg = tiny_config(manifest=f"{http_store.url}/manifest.csv", max_bad_fraction=0.5)
    dataset = build_dataset(cfg, "finetune", "test", report_dir=str(tmp_path))
    failing, hanging = dataset.samples[1], dataset.samples[2]
    http_store.faults[failing.key] = ["error"] * 2
    http_store.faults[hanging.key] = ["stall"] * 2
    start = time.monotonic()
    items = [dataset[1], dataset[2]]
    assert time.monotonic() - start < 2 * http_store.stall_s  # bounded by the time limit, not the server
    assert [int(item["video_index"]) for item in items] != [1, 2]  # replaced by other videos
    with open(tmp_path / "bad_files.jsonl", encoding="utf-8") as handle:
        reported = {entry["path"]: entry["reason"] for entry in map(json.loads, handle)}
    assert set(reported) == {failing.path, hanging.path}
    assert "503" in reported[failing.path] and "gave up after 2 attempts" in reported[failing.path]
    assert "Timeout" in reported[hanging.path]


def test_a_missing_remote_file_is_reported_at_once(http_store, tmp_path):
    from videomae.data.datasets import open_sample
    from videomae.data.decoders import DecodeError
    from videomae.data.manifests import Sample

    with pytest.raises(DecodeError, match="missing file"):
        open_sample(Sample(f"{http_store.url}/no/such.mp4"), "pyav")


def test_a_missing_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "s3fs" else real(name, *a))
    with pytest.raises(DataError) as error:
        build_dataset(tiny_config(manifest="s3://bucket/k400/train.csv"), "finetune", "train")
    assert str(error.value) == "reading s3://bucket/k400/train.csv needs fsspec and s3fs: pip install 'videomae[s3]'"


def test_outputs_stay_local():
    from videomae.training import load_recipe

    with pytest.raises(ConfigError, match=r"^output_dir=s3://bucket/runs/x is remote; .*local or mounted folder"):
        load_recipe("tiny", ["output_dir=s3://bucket/runs/x"])


def test_remote_weights_file_and_export_folder(s3_store, official_tiny, tmp_path, monkeypatch):
    """`pretrained=` a file or an exported folder in a bucket: downloaded once per version, then read as local."""
    from safetensors.torch import save_file
    from servers import upload

    from tests.checkpoint.helpers import tiny_classifier
    from videomae.checkpoint import read_source, save_pretrained

    monkeypatch.setenv("VIDEOMAE_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "weights"
    weights.mkdir()
    save_file(official_tiny["finetune_state"], str(weights / "tiny.safetensors"))
    model = tiny_classifier(0)
    save_pretrained(model, weights / "export")
    url = upload(str(weights), "s3://bucket/weights")

    single = read_source(f"{url}/tiny.safetensors")
    assert single.format == "official" and single.path.is_relative_to(tmp_path / "cache")
    assert all(torch.equal(single.state[k], v) for k, v in official_tiny["finetune_state"].items())
    export = read_source(f"{url}/export")
    assert export.format == "videomae" and export.config == model.config
    assert all(torch.equal(export.state[k], v) for k, v in model.state_dict().items())
    assert remote_module.download(f"{url}/export") == export.path  # cached: not downloaded again
    assert len(os.listdir(tmp_path / "cache" / "remote")) == 2
