"""The exported model directory: loadable without a name, with the class names `videomae predict` shows."""

import torch

from videomae import create_model
from videomae.training.distributed import Dist
from videomae.training.state import save_model_dir

TINY = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=1, num_heads=2, num_classes=3)


def test_export_writes_weights_meta_and_labels(tmp_path):
    model = create_model("vit_small_patch16_224", **TINY).eval()
    single = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    save_model_dir(str(tmp_path / "export"), single, model, {"step": 7}, class_names=["jump", "run", "swim"])
    assert (tmp_path / "export" / "labels.txt").read_text().splitlines() == ["jump", "run", "swim"]
    loaded = create_model(pretrained=str(tmp_path / "export")).eval()
    video = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(video), model(video))


def test_export_without_names_has_no_labels_file(tmp_path):
    single = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    save_model_dir(str(tmp_path / "export"), single, create_model("vit_small_patch16_224", **TINY), {"step": 1})
    assert not (tmp_path / "export" / "labels.txt").exists()
