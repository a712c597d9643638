"""`videomae push`: an export uploaded through huggingface_hub (create repository, preupload, commit) to a local
stand-in of the Hub, then read back by name."""

from __future__ import annotations

import torch

from tests.checkpoint.fake_hub import fake_hub, hub_env  # noqa: F401  (fixtures)
from tests.checkpoint.helpers import outputs, tiny_classifier
from videomae.checkpoint import locate, read_labels, save_hf
from videomae.cli import main
from videomae.factory import create_model


def test_push_then_load_by_name(hub_env, fake_hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    model = tiny_classifier(21)
    export = save_hf(model, tmp_path / "export", labels=["a", "b", "c"])
    assert main(["push", str(export), "acme/pushed", "--message", "first model"]) == 0
    assert "uploaded" in capsys.readouterr().out and "Bearer hf_test_token" in fake_hub.authorizations
    files = fake_hub.commits[fake_hub.refs["acme/pushed"]["main"]]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)

    loaded = create_model(pretrained="hf-hub:acme/pushed")
    torch.testing.assert_close(outputs(loaded), outputs(model), rtol=0, atol=1e-4)
    assert read_labels(locate("hf-hub:acme/pushed")) == ["a", "b", "c"]


def test_push_refuses_what_is_not_an_export(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "config.json").write_text('{"something": 1}')
    assert main(["push", str(tmp_path / "notes"), "acme/x"]) == 2
    assert "neither a videomae config" in capsys.readouterr().err
