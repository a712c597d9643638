"""Training on data in object storage: `videomae pretrain tiny` on shards in a local S3-compatible server (map-style
and streamed), and a stopped streamed run that resumes with the very samples an uninterrupted run reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from videomae.data.stream import StreamDataset
from videomae.training import load_recipe
from videomae.training.engine import Trainer

REPO = Path(__file__).resolve().parents[2]
QUIET = ["tensorboard=false", "log_every=1000"]


def losses(output_dir) -> list[float]:
    with open(Path(output_dir) / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)["loss"] for line in handle]


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_pretrain_tiny_on_shards_in_s3(s3_store, tmp_path, stream):
    """The command line, end to end: the shard index and shards in a bucket, credentials and endpoint from the
    environment (as for any S3-compatible store)."""
    command = [sys.executable, "-m", "videomae", "pretrain", "tiny", f"data.manifest={s3_store}/shards/index.csv"]
    command += ["max_steps=2", "batch_size=4", f"output_dir={tmp_path}", *QUIET, f"data.stream={str(stream).lower()}"]
    command += ["data.num_workers=2"] if stream else []
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(losses(tmp_path)) == 2 and all(loss is not None for loss in losses(tmp_path))
    assert (tmp_path / "export" / "model.safetensors").is_file()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stopped_streamed_run_resumes_with_the_same_samples(shards, tmp_path, monkeypatch, workers):
    """Stopped after 4 steps, mid-epoch, and started again: the same samples in the same order as a run that was
    never stopped (the keys the dataset decodes, seen in-process without workers), and so the same losses."""
    keys: list[tuple[int, str]] = []
    item = StreamDataset._item

    def spy(self, epoch: int, index: int):
        keys.append((epoch, self.samples[index].key))
        return item(self, epoch, index)

    monkeypatch.setattr(StreamDataset, "_item", spy)
    settings = [f"data.manifest={shards}", "data.stream=true", "data.shuffle_buffer=4", f"data.num_workers={workers}"]
    settings += ["batch_size=4", "save_every=100", *QUIET]  # 6 steps per epoch

    def train(output_dir, max_steps: int) -> list[tuple[int, str]]:
        keys.clear()
        Trainer(load_recipe("tiny", [*settings, f"output_dir={output_dir}", f"max_steps={max_steps}"])).fit()
        return keys[: 4 * max_steps] if workers == 0 else []  # the loader reads one batch ahead

    uninterrupted = train(tmp_path / "reference", 9)
    assert len(uninterrupted) == (36 if workers == 0 else 0)
    first = train(tmp_path / "run", 4)
    rest = train(tmp_path / "run", 9)[: 4 * 5]
    assert first + rest == uninterrupted
    assert losses(tmp_path / "run") == losses(tmp_path / "reference")


def test_resuming_a_stream_with_another_layout_warns(shards, tmp_path, capsys):
    """With other workers the stream cannot give the interrupted order: the run goes on, and says so."""
    settings = [f"data.manifest={shards}", "data.stream=true", "batch_size=4", *QUIET, f"output_dir={tmp_path}"]
    Trainer(load_recipe("tiny", [*settings, "data.num_workers=0", "max_steps=2"])).fit()
    assert "streamed shards were read with" not in capsys.readouterr().err
    Trainer(load_recipe("tiny", [*settings, "data.num_workers=2", "max_steps=3"])).fit()
    assert (
        "the streamed shards were read with {'world_size': 1, 'batch_size': 4, 'accum_steps': 1, 'num_workers': 0}"
        in (capsys.readouterr().err)
    )
