"""`videomae convert`: official .pth -> ours -> Hugging Face -> ours, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import OFFICIAL_TINY
from videomae.cli import main
from videomae.factory import create_model

TINY_ARGS = ["--num-heads", "4", "--decoder-num-heads", "2", "--num-frames", "4", "--img-size", "32"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "videomae", "convert", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_official_pretrain_to_ours_keeps_decoder(official_tiny, tmp_path):
    result = _cli(str(OFFICIAL_TINY / "pretrain_checkpoint.pth"), str(tmp_path / "ours"), *TINY_ARGS)
    assert result.returncode == 0, result.stderr
    assert "architecture inferred" in result.stdout and "wrote" in result.stdout
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["kind"] == "pretrain" and config["decoder_depth"] == 2
    e = official_tiny["expected"]
    model = create_model(pretrained=str(tmp_path / "ours")).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model(e["video"], e["encoder_mask"], e["decoder_mask"]), e["pretrain_output"], rtol=0, atol=1e-5
        )


@pytest.mark.slow
def test_bad_file_exits_2_without_traceback(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"garbage")
    result = _cli(str(tmp_path / "junk.pth"), str(tmp_path / "out"))
    assert result.returncode == 2
    assert "videomae convert: error: cannot read" in result.stderr and "Traceback" not in result.stderr


def test_ours_to_hf_and_back(official_tiny, tmp_path, capsys):
    assert (
        main(["convert", str(OFFICIAL_TINY / "finetune_checkpoint.pth"), str(tmp_path / "ours"), "--num-heads", "4"])
        == 0
    )
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "hf"), "--format", "hf"]) == 0
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["architectures"] == ["VideoMAEForVideoClassification"] and len(hf_config["id2label"]) == 7
    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "again")]) == 0
    e = official_tiny["expected"]
    model = create_model(pretrained=str(tmp_path / "again")).eval()
    with torch.no_grad():  # fc_norm now has transformers' eps 1e-5 (official 1e-6)
        torch.testing.assert_close(model(e["video"]), e["finetune_logits"], rtol=0, atol=1e-4)
    assert "wrote" in capsys.readouterr().out


def test_user_errors(official_tiny, tmp_path, capsys):
    src = str(OFFICIAL_TINY / "finetune_checkpoint.pth")
    assert main(["convert", src, str(tmp_path / "x")]) == 2  # heads of an unofficial width
    assert "num_heads" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "x")]) == 2
    assert "missing.pth does not exist" in capsys.readouterr().err
    assert main(["convert", src, str(tmp_path / "x"), "--model", "vit_tiny"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["convert", src, str(tmp_path / "x"), "--num-heads", "4"]) == 0
    assert main(["convert", src, str(tmp_path / "x"), "--num-heads", "4"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["convert", src, str(tmp_path / "y"), "--format", "onnx"])
    assert info.value.code == 2


def test_labels_and_preprocessing_survive_a_round_trip(tmp_path, capsys):
    from tests.checkpoint.helpers import tiny_classifier
    from videomae.checkpoint import save_pretrained
    from videomae.checkpoint.preprocessing import Preprocessing, read_preprocessing_file, write_preprocessing

    ours = save_pretrained(tiny_classifier(31), tmp_path / "ours")
    (ours / "labels.txt").write_text("jump\nrun\nsit\n")
    trained = Preprocessing(num_frames=4, sampling_rate=2, input_size=32, short_side_size=36)
    write_preprocessing(trained, ours)

    assert main(["convert", str(ours), str(tmp_path / "hf"), "--format", "hf"]) == 0
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["id2label"] == {"0": "jump", "1": "run", "2": "sit"}
    processor = json.loads((tmp_path / "hf" / "preprocessor_config.json").read_text())
    assert processor["size"] == {"shortest_edge": 36} and processor["crop_size"] == {"height": 32, "width": 32}
    assert (tmp_path / "hf" / "README.md").is_file()

    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "back")]) == 0
    assert "with class names" in capsys.readouterr().out
    assert (tmp_path / "back" / "labels.txt").read_text().split() == ["jump", "run", "sit"]
    assert read_preprocessing_file(tmp_path / "back" / "preprocessing.json") == trained
    assert main(["convert", str(ours), str(tmp_path / "k"), "--labels", str(tmp_path / "back" / "config.json")]) == 2
