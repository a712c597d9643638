"""The README's own-videos journey, run exactly as written, on files this project did not write.

The commands are read from README.md (the first bash block under "## Your own videos"), so the document cannot
drift from what is tested. `my_videos/` holds clips made with the ffmpeg command line in several containers and
codecs plus real sample videos from public packages; `new_clip.mp4` is one more of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the command line or several processes

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(section: str) -> list[str]:
    """The commands of the first ```bash block after `## {section}` (continued lines joined)."""
    text = README.read_text(encoding="utf-8")
    body = text[text.index(f"## {section}") :]
    block = re.search(r"```bash\n(.*?)```", body, re.S).group(1)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def make_user_folder(root: Path, foreign: dict[str, str], package: dict[str, str]) -> None:
    """`my_videos/<class>/` with every foreign and package clip, two classes, plus `new_clip.mp4`."""
    clips = sorted(foreign.items()) + sorted(package.items())
    for index, (name, path) in enumerate(clips):
        folder = root / "my_videos" / ("left" if index % 2 else "right")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / f"{name}{Path(path).suffix}")
    shutil.copy(next(path for path in foreign.values() if path.endswith(".mp4")), root / "new_clip.mp4")


def test_own_videos_journey_runs_verbatim(foreign_videos, package_videos, tmp_path):
    commands = readme_commands("Your own videos")
    assert [c.split()[:2] for c in commands] == [
        ["videomae", "data"],
        ["videomae", "pretrain"],
        ["videomae", "finetune"],
        ["videomae", "predict"],
    ]
    make_user_folder(tmp_path, foreign_videos, package_videos)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    outputs = []
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
        outputs.append(done)
    names = (tmp_path / "data" / "mine" / "labels.txt").read_text().split()
    assert names == ["left", "right"]
    for run in ("runs/mine_pt", "runs/mine"):
        assert not (tmp_path / run / "bad_files.jsonl").exists() or not (tmp_path / run / "bad_files.jsonl").read_text()
    trained = json.loads((tmp_path / "runs" / "mine" / "export" / "preprocessing.json").read_text())
    assert trained["num_frames"] == 4 and trained["input_size"] == 32
    prediction = outputs[-1].stdout
    assert prediction.startswith("new_clip.mp4 (4 views)")  # tiny_finetune tests 2 clips x 2 crops
    assert {line.split()[-1] for line in prediction.splitlines()[1:]} == {"left", "right"}


# README commands that a CPU without network runs as written, by section; the others need GPUs, released weights
# or data sets this machine does not have (they are the same commands at another scale).
RUNNABLE_HERE = [
    ("Training: one CPU to many nodes", "videomae pretrain tiny output_dir=runs/tiny"),
    ("Other commands", "videomae visualize clip.mp4 --checkpoint runs/tiny --output recon.png --gif recon.gif"),
    ("Released VideoMAE V2 and Hugging Face checkpoints", "videomae models"),
    (
        "Action detection (AVA)",
        'python -c "from videomae.detection.synthetic import write_detection_set; '
        "write_detection_set('data/digits_ava')\"",
    ),
    ("Action detection (AVA)", "videomae detect tiny_detect"),
]


def test_other_readme_commands_run_as_written(foreign_videos, tmp_path):
    shutil.copy(next(path for path in foreign_videos.values() if path.endswith(".mp4")), tmp_path / "clip.mp4")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    for section, command in RUNNABLE_HERE:
        assert command in [c.split("  #")[0].strip() for c in readme_commands(section)], (section, command)
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, f"{command}\n{done.stderr[-3000:]}"
    assert (tmp_path / "recon.png").is_file() and (tmp_path / "recon.gif").is_file()
