"""One rule for "a checkpoint": files, our and HF directories, training runs (export, best, newest step)."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

from videomae import create_model
from videomae.checkpoint import locate, read_labels, read_preprocessing
from videomae.errors import CheckpointError

QUIET = ["tensorboard=false", "log_every=1000"]
pytestmark = pytest.mark.data_stack  # trains a tiny run


@pytest.fixture(scope="module")
def finetune_run(tmp_path_factory):
    """A tiny fine-tuning run with step checkpoints, a best checkpoint and an export."""
    from videomae.training import load_recipe, run

    out = tmp_path_factory.mktemp("runs") / "ft"
    run(
        load_recipe(
            "tiny_finetune",
            [
                f"output_dir={out}",
                *QUIET,
                "max_steps=2",
                "save_every=1",
                "val_every=1",
                "epochs=2",
                "data.synthetic.num_videos=8",
                "test_at_end=false",
                "data.sampling_rate=3",
                "data.test_num_crop=1",
            ],
        )
    )
    return out


def weights_equal(model: torch.nn.Module, file) -> bool:
    expected = load_file(str(file))
    return all(torch.equal(value, expected[key]) for key, value in model.state_dict().items())


def test_a_run_directory_loads_its_export_and_says_so(finetune_run):
    location = locate(finetune_run)
    assert location.path == finetune_run / "export" and location.run_dir == finetune_run
    assert "export/" in location.note
    model = create_model(pretrained=str(finetune_run))
    assert weights_equal(model, finetune_run / "export" / "model.safetensors")


def test_a_run_without_export_falls_back_to_best_then_newest_step(finetune_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finetune_run, run_dir)
    shutil.rmtree(run_dir / "export")
    assert locate(run_dir).path == run_dir / "checkpoints" / "best" and "best" in locate(run_dir).note
    assert weights_equal(create_model(pretrained=str(run_dir)), run_dir / "checkpoints" / "best" / "model.safetensors")
    shutil.rmtree(run_dir / "checkpoints" / "best")
    newest = sorted((run_dir / "checkpoints").glob("step_*"))[-1]
    location = locate(run_dir)
    assert location.path == newest and location.kind == "step" and newest.name in location.note
    assert weights_equal(create_model(pretrained=str(run_dir)), newest / "model.safetensors")
    assert weights_equal(create_model(pretrained=str(newest)), newest / "model.safetensors")  # a step dir itself


def test_labels_and_preprocessing_travel_with_the_weights(finetune_run):
    names = read_labels(locate(finetune_run))
    assert names == [line for line in (finetune_run / "export" / "labels.txt").read_text().splitlines()]
    preprocessing, source = read_preprocessing(locate(finetune_run))
    assert source == finetune_run / "export" / "preprocessing.json"
    assert (preprocessing.num_frames, preprocessing.sampling_rate, preprocessing.input_size) == (4, 3, 32)
    assert (preprocessing.test_num_segment, preprocessing.test_num_crop) == (2, 1)
    step = sorted((finetune_run / "checkpoints").glob("step_*"))[-1]
    from_config, config_file = read_preprocessing(locate(step))  # no preprocessing.json: the run's config.json
    assert config_file == finetune_run / "config.json" and from_config == preprocessing


def test_broken_run_directories_are_one_line_errors(finetune_run, tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    shutil.copy(finetune_run / "config.json", empty / "config.json")
    with pytest.raises(CheckpointError, match="has no export/ and no checkpoint yet"):
        locate(empty)
    (empty / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        locate(empty)
    corrupt = tmp_path / "corrupt_export"
    shutil.copytree(finetune_run / "export", corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors as safetensors") as info:
        create_model(pretrained=str(corrupt))
    assert "\n" not in str(info.value)
