"""Detection end to end on the synthetic digits set, through the command line: `videomae detect` trains a tiny
detector well above random scores, `videomae eval` writes the same detections and mAP (also on two processes),
`videomae predict --boxes` draws them, a malformed file stops a command with one line and exit status 2, and a
training step reads nothing back from the device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.test_host_sync import count_reads
from videomae.cli import main
from videomae.data.loader import run_batches
from videomae.detection.evaluation import evaluate_files, frame_map
from videomae.detection.formats import BoxRow, read_annotations, read_excluded, read_label_map, read_proposals
from videomae.detection.synthetic import write_detection_set
from videomae.training import Trainer, load_recipe

QUIET = ["tensorboard=false", "log_every=1000"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits_ava")
    write_detection_set(str(folder))  # 24 training and 4 validation videos of 6 keyframes, 2 digits each
    return folder


def data_args(digits) -> list[str]:
    return [f"data.root={digits / 'frames'}", f"detection.annotations={digits}", *QUIET]


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny_detect"
    assert main(["detect", "tiny_detect", f"output_dir={run}", *data_args(digits)]) == 0
    return run


def official_files(digits) -> tuple[str, str, str]:
    return str(digits / "val.csv"), str(digits / "actions.pbtxt"), str(digits / "val_excluded.csv")


def random_map(digits, draws: int = 10) -> float:
    """The mean mAP (percent) of random scores for the same test boxes."""
    groundtruth, labels, excluded = official_files(digits)
    truth, names, skip = read_annotations(groundtruth), read_label_map(labels), read_excluded(excluded)
    spelled = {row.keyframe: row.timestamp for row in truth}
    boxes = [(key, p.box) for key, found in read_proposals(str(digits / "val_proposals.csv")).items() for p in found]
    rng = np.random.default_rng(0)
    maps = [
        frame_map(
            truth,
            [BoxRow(k[0], spelled[k], box, a, float(rng.random())) for k, box in boxes for a in names],
            names,
            skip,
        ).mean_ap
        for _ in range(draws)
    ]
    return 100 * float(np.mean(maps))


def test_training_lifts_map_well_above_random_scores(trained, digits):
    metrics = json.loads((trained / "test" / "metrics.json").read_text())
    baseline = random_map(digits)
    assert metrics["mAP"] > baseline + 20, (metrics["mAP"], baseline)
    assert set(metrics["per_action_ap"]) == {"move left", "move right", "move up", "move down"}
    groundtruth, labels, excluded = official_files(digits)
    scored = evaluate_files(groundtruth, str(trained / "test" / "detections.csv"), labels, excluded)
    assert 100 * scored.mean_ap == metrics["mAP"]  # the reported mAP is the evaluator's, on the written file
    rows = (trained / "test" / "detections.csv").read_text().splitlines()
    assert len(rows) == metrics["num_detections"] == 4 * 2 * metrics["num_keyframes"]  # 4 actions x 2 digits
    assert (trained / "export" / "labels.txt").read_text().split("\n")[0] == "move left"


def test_eval_writes_the_same_detections(trained, digits, tmp_path):
    assert main(["eval", "tiny_detect", f"pretrained={trained}", f"output_dir={tmp_path}", *data_args(digits)]) == 0
    assert (tmp_path / "test" / "detections.csv").read_bytes() == (trained / "test" / "detections.csv").read_bytes()
    assert json.loads((tmp_path / "test" / "metrics.json").read_text())["mAP"] == pytest.approx(
        json.loads((trained / "test" / "metrics.json").read_text())["mAP"]
    )


def test_predict_draws_labelled_boxes(trained, digits, tmp_path, capsys):
    png, gif = tmp_path / "actions.png", tmp_path / "actions.gif"
    command = ["predict", str(digits / "frames" / "val024"), "--checkpoint", str(trained), "--fps", "8"]
    command += ["--boxes", str(digits / "val_proposals.csv"), "--output", str(png), "--gif", str(gif)]
    assert main(command) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("val024 (6 keyframes, 12 boxes)") and len(table) == 13
    with Image.open(png) as grid, Image.open(gif) as animation:
        assert grid.width > 4 * 256 and grid.height > 2 * 256  # 6 keyframes in rows of 4, 256-pixel frames
        assert animation.n_frames == 6 * 4  # every clip frame of every keyframe


def test_a_malformed_annotation_file_exits_2_with_one_line(digits, tmp_path, capsys):
    bad = tmp_path / "train.csv"
    bad.write_text("train000,0001,0.1,0.2,0.3,0.4,1,0\ntrain000,0002,0.1,0.2\n")
    command = ["detect", "tiny_detect", f"detection.train_csv={bad}", f"output_dir={tmp_path / 'run'}"]
    assert main(command + data_args(digits)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("videomae detect: error: ") and f"{bad}:2: expected 'video_id,timestamp,x1,y1" in error


def test_detection_steps_read_nothing_back(digits, tmp_path, monkeypatch):
    overrides = [f"output_dir={tmp_path}", "data.num_workers=1", "val_every=0", *data_args(digits)]
    trainer = Trainer(load_recipe("tiny_detect", overrides))
    trainer.setup()
    with run_batches(trainer.build_train_loader(0), 0, trainer.d.device) as batches:
        trainer.train_step(batches, 0)  # fills the per-device caches
        reads = count_reads(monkeypatch)
        steps = [trainer.train_step(batches, step) for step in (1, 2)]
        made = {name: where for name, where in reads.items() if where}
        monkeypatch.undo()
    assert made == {}, made
    assert [s.step for s in steps] == [2, 3]


@pytest.mark.slow
def test_two_processes_write_the_same_detections(trained, digits, tmp_path):
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "videomae"]
    command = [*launcher, "eval", "tiny_detect", f"pretrained={trained}", f"output_dir={tmp_path}", *data_args(digits)]
    done = subprocess.run(command, env=env, cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "test" / "detections.csv").read_bytes() == (trained / "test" / "detections.csv").read_bytes()
