"""Every error a user can cause is one line naming the file, line, field or value, with exit status 2.

Each case is a command line run in-process (an uncaught exception fails the test) and the fragments its one-line
message must hold; the subprocess cases also check that no traceback reaches the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apps.fixtures import assets  # noqa: F401  (a fixture)
from videomae.cli import main

QUIET = ["tensorboard=false", "log_every=1000"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, assets):  # noqa: F811
    """The broken inputs of the table, written once."""
    root = tmp_path_factory.mktemp("user_errors")
    video = assets.videos / "long.mp4"
    (root / "latin1.csv").write_bytes("path,label\ncaf\xe9.mp4,0\n".encode("latin-1"))
    (root / "fraction.csv").write_text(f"path,label\n{video},1.5\n")
    (root / "huge.csv").write_text(f"path,label\n{video},1000000000\n")
    (root / "bad_config").mkdir()
    (root / "bad_config" / "config.json").write_text("{truncated")
    corrupt = root / "corrupt_weights"
    shutil.copytree(assets.classifier, corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 3])
    (root / "bad.toml").write_text("stage = \n")
    (root / "not_a_dir").write_text("a file where a folder should be")
    (root / "names.txt").write_text("one\ntwo\n")
    (root / "two_videos.csv").write_text(f"path,label\n{video},0\n{assets.videos / 'short.mp4'},1\n")
    return root


def case(name, argv, *fragments):
    return pytest.param(argv, fragments, id=name)


CASES = [
    case("non-UTF-8 manifest", ["data", "scan", "{root}/latin1.csv"], "latin1.csv:2", "UTF-8"),
    case(
        "fractional label",
        ["finetune", "tiny_finetune", "data.manifest={root}/fraction.csv", "output_dir={root}/r1", *QUIET],
        "fraction.csv:2",
        "1.5",
    ),
    case(
        "huge label",
        ["finetune", "tiny_finetune", "data.manifest={root}/huge.csv", "output_dir={root}/r2", *QUIET],
        "huge.csv:2",
        "1000000000",
    ),
    case(
        "malformed config.json",
        ["predict", "{video}", "--checkpoint", "{root}/bad_config"],
        "bad_config/config.json is not valid JSON",
    ),
    case(
        "corrupt safetensors",
        ["predict", "{video}", "--checkpoint", "{root}/corrupt_weights"],
        "corrupt_weights/model.safetensors",
    ),
    case("missing checkpoint", ["predict", "{video}", "--checkpoint", "{root}/nowhere"], "nowhere does not exist"),
    case(
        "missing manifest",
        ["pretrain", "tiny", "data.manifest={root}/nope.csv", "output_dir={root}/r3", *QUIET],
        "nope.csv does not exist",
    ),
    case("nan learning rate", ["pretrain", "tiny", "optim.lr=nan", "output_dir={root}/r4"], "optim.lr", "nan"),
    case("one beta", ["pretrain", "tiny", "optim.betas=[0.9]", "output_dir={root}/r5"], "optim.betas expects 2 values"),
    case("negative workers", ["pretrain", "tiny", "data.num_workers=-1", "output_dir={root}/r6"], "data.num_workers"),
    case("unknown setting", ["pretrain", "tiny", "optim.nope=1"], "unknown setting 'optim.nope'"),
    case("unknown recipe", ["pretrain", "no_such_recipe"], "unknown recipe 'no_such_recipe'"),
    case("malformed recipe file", ["pretrain", "{root}/bad.toml"], "bad.toml", "not valid TOML"),
    case("wrong type", ["pretrain", "tiny", "batch_size=many"], "batch_size expects int", "many"),
    case(
        "frames not divisible by the tubelet",
        ["pretrain", "tiny", "data.num_frames=3", "output_dir={root}/r7", *QUIET],
        "num_frames=3",
        "tubelet_size=2",
    ),
    case("eval without weights", ["eval", "tiny_finetune", "output_dir={root}/r8"], "set pretrained="),
    case(
        "checkpoint of another architecture",
        ["finetune", "tiny_finetune", "pretrained={classifier}", "output_dir={root}/r9", *QUIET],
        "does not fit the model",
    ),
    case("output_dir is a file", ["pretrain", "tiny", "output_dir={root}/not_a_dir", *QUIET], "not_a_dir"),
    case(
        "labels of the wrong size",
        ["predict", "{video}", "--checkpoint", "{classifier}", "--labels", "{root}/names.txt"],
        "2 class names but the model has 3 outputs",
    ),
    case(
        "classifier given to visualize",
        ["visualize", "{video}", "--checkpoint", "{classifier}", "--output", "{root}/x.png"],
        "needs a pretraining checkpoint",
    ),
    case("convert over a checkpoint", ["convert", "{classifier}", "{classifier}"], "already holds a checkpoint"),
    case("prepare into its source", ["data", "prepare", "{videos}", "{videos}/out"], "inside"),
    case(
        "unknown backend",
        ["pretrain", "tiny", "data.backend=decord3", "output_dir={root}/r10"],
        "data.backend",
        "decord3",
    ),
    case(
        "batch larger than the data",
        ["finetune", "tiny_finetune", "data.manifest={root}/two_videos.csv", "output_dir={root}/r11", *QUIET],
        "fewer than one global batch",
    ),
]


@pytest.mark.parametrize("argv, fragments", CASES)
def test_user_error_is_one_line_with_exit_status_2(argv, fragments, files, assets, capsys):  # noqa: F811
    fill = {
        "root": files,
        "video": assets.videos / "long.mp4",
        "videos": assets.videos,
        "classifier": assets.classifier,
    }
    code = main([arg.format(**fill) for arg in argv])
    err = capsys.readouterr().err
    message = [line for line in err.splitlines() if line.startswith("videomae ")]
    assert code == 2 and len(message) == 1, err
    for fragment in fragments:
        assert fragment.format(**fill) in message[0], message[0]


@pytest.mark.slow
def test_an_error_raised_in_a_loader_worker_reaches_the_user_as_its_own_line(assets, tmp_path):  # noqa: F811
    manifest = tmp_path / "all_bad.csv"
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    manifest.write_text("path\n" + "broken.mp4\n" * 8)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "videomae",
            "pretrain",
            "tiny",
            f"data.manifest={manifest}",
            "data.num_workers=1",
            f"output_dir={tmp_path / 'run'}",
            *QUIET,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Original" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("videomae pretrain: error: ") and "videos are bad" in last and "broken.mp4" in last


@pytest.mark.slow
def test_no_nan_in_machine_readable_outputs(assets, tmp_path):  # noqa: F811
    """A diverged classifier (NaN weights) still gives valid JSON: null where a number cannot be."""
    import torch

    from videomae.checkpoint import save_pretrained
    from videomae.factory import create_model

    model = create_model(pretrained=str(assets.classifier))
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    save_pretrained(model, tmp_path / "nan_model")
    shutil.copy(Path(assets.classifier) / "labels.txt", tmp_path / "nan_model")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "videomae",
            "predict",
            str(assets.videos / "short.mp4"),
            "--checkpoint",
            str(tmp_path / "nan_model"),
            "--json",
            "--clips",
            "1",
            "--crops",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    probabilities = [entry["probability"] for entry in json.loads(done.stdout)[0]["top_k"]]
    assert probabilities and all(p is None for p in probabilities)
