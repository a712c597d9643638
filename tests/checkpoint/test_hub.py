"""Checkpoints from the Hugging Face Hub (`hf-hub:...` and zoo names) against a local stand-in of the Hub."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.checkpoint.fake_hub import fake_hub, go_offline, hub_env  # noqa: F401  (fixtures)
from tests.checkpoint.helpers import TINY_SETTINGS, outputs, tiny_classifier
from videomae.checkpoint import locate, read_labels, read_preprocessing, save_hf, save_pretrained
from videomae.checkpoint.hf import to_hf_state
from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing
from videomae.errors import CheckpointError
from videomae.factory import create_model

LABELS = ["left", "right", "still"]


def our_repo(tmp_path, model, name: str):
    folder = save_pretrained(model, tmp_path / name)
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    write_preprocessing(Preprocessing(num_frames=4, sampling_rate=2, input_size=32, short_side_size=40), folder)
    return folder


def test_our_layout_repository_by_revision(hub_env, fake_hub, tmp_path):
    first, second = tiny_classifier(0), tiny_classifier(1)
    v1 = fake_hub.publish("acme/tiny", our_repo(tmp_path, first, "v1"), tags=("v1.0",))
    fake_hub.publish("acme/tiny", our_repo(tmp_path, second, "v2"))

    latest = create_model(pretrained="hf-hub:acme/tiny")
    torch.testing.assert_close(outputs(latest), outputs(second), rtol=0, atol=0)
    for pinned in ("hf-hub:acme/tiny@v1.0", f"hf-hub:acme/tiny@{v1}"):
        torch.testing.assert_close(outputs(create_model(pretrained=pinned)), outputs(first), rtol=0, atol=0)
    location = locate("hf-hub:acme/tiny@v1.0")
    assert location.kind == "videomae" and location.path.name == v1
    assert read_labels(location) == LABELS and read_preprocessing(location)[0].short_side_size == 40


def test_transformers_layout_repositories(hub_env, fake_hub, tmp_path):
    model = tiny_classifier(2)
    fake_hub.publish("acme/tiny-hf", save_hf(model, tmp_path / "hf", labels=LABELS))
    pickled = tmp_path / "pickled"  # an older transformers repository: pytorch_model.bin only
    pickled.mkdir()
    (pickled / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    torch.save(to_hf_state(model.state_dict(), "videomae."), pickled / "pytorch_model.bin")
    fake_hub.publish("acme/tiny-bin", pickled)

    for ref in ("hf-hub:acme/tiny-hf", "hf-hub:acme/tiny-bin"):
        loaded = create_model(pretrained=ref)  # fc_norm gets transformers' eps 1e-5 (ours 1e-6)
        torch.testing.assert_close(outputs(loaded), outputs(model), rtol=0, atol=1e-4)
        assert read_labels(locate(ref)) == LABELS  # from id2label
    assert not any("README.md" in request for request in fake_hub.requests)  # configs and weights only
    assert any(request.startswith("CDN GET") for request in fake_hub.requests)  # weights through the redirect


def test_official_file_in_a_file_repository_and_zoo_name(hub_env, fake_hub, tmp_path):
    model = tiny_classifier(3, num_classes=710)
    state = {"module": {key: value.half() for key, value in model.state_dict().items()}}  # as released: fp16
    torch.save(state, tmp_path / "student.pth")
    fake_hub.publish(
        "OpenGVLab/VideoMAE2",
        {
            "README.md": b"weights",
            "distill/vit_s_k710_dl_from_giant.pth": (tmp_path / "student.pth").read_bytes(),
            "mae-g/vit_g_hybrid_pt_1200e_ssv2_ft.pth": b"not read here",
        },
    )
    local = create_model(pretrained=str(tmp_path / "student.pth"), **TINY_SETTINGS)
    by_path = create_model(
        pretrained="hf-hub:OpenGVLab/VideoMAE2/distill/vit_s_k710_dl_from_giant.pth", **TINY_SETTINGS
    )
    by_name = create_model(pretrained="vit_s_k710_dl_from_giant", **TINY_SETTINGS)
    for loaded in (by_path, by_name):
        torch.testing.assert_close(outputs(loaded), outputs(local), rtol=0, atol=0)
    assert locate("vit_s_k710_dl_from_giant").note.endswith("distill/vit_s_k710_dl_from_giant.pth")
    assert read_preprocessing(locate("vit_s_k710_dl_from_giant"))[0] == Preprocessing()  # dense, 5 x 3
    ssv2 = read_preprocessing(locate("vit_g_hybrid_pt_1200e_ssv2_ft"))[0]  # the official SSv2 protocol
    assert ssv2.sparse and (ssv2.test_num_segment, ssv2.test_num_crop) == (2, 3)
    with pytest.raises(CheckpointError, match="has no config.json at its top.*hf-hub:OpenGVLab/VideoMAE2/PATH"):
        locate("hf-hub:OpenGVLab/VideoMAE2")


def test_offline_uses_the_cache_and_says_what_is_missing(hub_env, fake_hub, tmp_path, monkeypatch):
    model = tiny_classifier(4)
    fake_hub.publish("acme/tiny", our_repo(tmp_path, model, "ours"))
    fake_hub.publish("acme/other", our_repo(tmp_path, model, "other"))
    create_model(pretrained="hf-hub:acme/tiny")  # fills the cache
    asked = len(fake_hub.requests)

    go_offline(monkeypatch)
    torch.testing.assert_close(outputs(create_model(pretrained="hf-hub:acme/tiny")), outputs(model), rtol=0, atol=0)
    assert len(fake_hub.requests) == asked  # nothing asked of the Hub
    with pytest.raises(CheckpointError) as error:
        locate("hf-hub:acme/other")
    assert "not in the Hugging Face cache" in str(error.value) and "HF_HUB_OFFLINE is set" in str(error.value)


@pytest.mark.parametrize(
    "ref, message",
    [
        ("hf-hub:acme/nope", "no Hugging Face repository acme/nope"),
        ("hf-hub:acme/tiny/missing.pth", "acme/tiny has no file missing.pth at its default branch"),
        ("hf-hub:acme/tiny@v9", "acme/tiny has no revision 'v9'"),
    ],
)
def test_missing_repository_file_or_revision(hub_env, fake_hub, tmp_path, ref, message):
    fake_hub.publish("acme/tiny", our_repo(tmp_path, tiny_classifier(5), "ours"))
    with pytest.raises(CheckpointError, match=message) as error:
        locate(ref)
    assert "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.data_stack
def test_predict_command_by_name_in_a_fresh_process(hub_env, fake_hub, tmp_path):
    """HF_ENDPOINT and HF_HOME reach huggingface_hub through the environment alone; views as trained (5 x 3)."""
    from tests.apps.fixtures import moving_frames
    from videomae.data.synthetic import encode_video

    fake_hub.publish("acme/tiny", our_repo(tmp_path, tiny_classifier(6), "ours"))
    encode_video(str(tmp_path / "clip.mp4"), moving_frames(12, 36, 48, seed=0))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "videomae",
            "predict",
            str(tmp_path / "clip.mp4"),
            "--checkpoint",
            "hf-hub:acme/tiny",
            "--top-k",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_base_env(), **hub_env},
    )
    assert result.returncode == 0, result.stderr
    (prediction,) = json.loads(result.stdout)
    assert prediction["views"] == 5 * 3 and {entry["label"] for entry in prediction["top_k"]} == set(LABELS)
    assert list((tmp_path / "hf_home" / "hub").glob("models--acme--tiny/snapshots/*/model.safetensors"))


@pytest.mark.slow
def test_command_line_error_is_one_line(hub_env, fake_hub, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "videomae", "convert", "hf-hub:acme/nope", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**hub_env, **_base_env()},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "videomae convert: error: hf-hub:acme/nope: no Hugging Face repository acme/nope (or it is private: log in "
        "with `hf auth login` or set HF_TOKEN); check the name"
    ]


def test_without_huggingface_hub_the_error_says_how_to_install(monkeypatch):
    from videomae.checkpoint.hub import fetch

    fetch.cache_clear()
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(CheckpointError, match=r'needs huggingface_hub: pip install "videomae\[hf\]"'):
        locate("hf-hub:acme/tiny")


def test_a_missing_local_file_names_the_zoo_entry(tmp_path):
    with pytest.raises(CheckpointError, match="use that name, which downloads hf-hub:OpenGVLab/VideoMAE2/mae-g/"):
        locate(tmp_path / "model_zoo" / "vit_g_hybrid_pt_1200e_k710_ft.pth")
    with pytest.raises(CheckpointError, match="was not released"):
        locate("model_zoo/vit_b_k710_post_pretrained.pth")
    with pytest.raises(CheckpointError, match="write hf-hub:acme/some-model$"):
        locate("acme/some-model")


def _base_env() -> dict:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("HF_")} | {"OMP_NUM_THREADS": "1"}
