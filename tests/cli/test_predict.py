"""`videomae predict` end to end: table and JSON, label sources, bad inputs."""

from __future__ import annotations

import json

from tests.product.fixtures import assert_user_error, assets, run_cli  # noqa: F401  (assets is a fixture)


def test_predict_json_uses_labels_beside_the_checkpoint(assets):
    result = run_cli("predict", str(assets.videos), str(assets.frames), "--checkpoint", str(assets.classifier),
                     "--clips", "2", "--crops", "3", "--sampling-rate", "2", "--top-k", "2", "--json")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)
    assert [p["video"].rsplit("/", 1)[-1] for p in predictions] == ["long.mp4", "short.mp4", "clip_a"]
    for prediction in predictions:
        assert prediction["views"] == 6 and len(prediction["top_k"]) == 2
        assert {entry["label"] for entry in prediction["top_k"]} <= {"left", "right", "still"}
        probabilities = [entry["probability"] for entry in prediction["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6


def test_predict_table_and_label_file(assets, tmp_path):
    from videomae.cli import main

    labels = tmp_path / "names.txt"
    labels.write_text("alpha\nbeta\ngamma\n")
    result = run_cli("predict", str(assets.videos / "long.mp4"), "--checkpoint", str(assets.classifier),
                     "--labels", str(labels), "--clips", "1", "--crops", "1", "--top-k", "9")
    assert result.returncode == 0, result.stderr
    assert "long.mp4 (1 views)" in result.stdout and "3. " in result.stdout and "4. " not in result.stdout
    assert "alpha" in result.stdout
    assert main(["predict", str(assets.videos / "long.mp4"), "--checkpoint", str(assets.classifier),
                 "--labels", "k400"]) == 2  # 400 names for a 3-class model


def test_predict_rejects_bad_inputs(assets, capsys):
    pretrain = run_cli("predict", str(assets.videos / "long.mp4"), "--checkpoint", str(assets.pretrain))
    assert_user_error(pretrain, "not a classifier")
    corrupt = run_cli("predict", str(assets.corrupt), "--checkpoint", str(assets.classifier))
    assert_user_error(corrupt, "corrupt.mp4")
    from videomae.cli import main

    assert main(["predict", str(assets.videos), "--checkpoint", str(assets.classifier), "--top-k", "0"]) == 2
    assert "--top-k must be at least 1" in capsys.readouterr().err
