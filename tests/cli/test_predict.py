"""`videomae predict` end to end: table and JSON, label sources, bad inputs."""

from __future__ import annotations

import json

from tests.apps.fixtures import assert_user_error, assets, run_cli  # noqa: F401  (assets is a fixture)


def test_predict_json_uses_labels_beside_the_checkpoint(assets):
    result = run_cli(
        "predict",
        str(assets.videos),
        str(assets.frames),
        "--checkpoint",
        str(assets.classifier),
        "--clips",
        "2",
        "--crops",
        "3",
        "--sampling-rate",
        "2",
        "--top-k",
        "2",
        "--json",
    )
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
    result = run_cli(
        "predict",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(assets.classifier),
        "--labels",
        str(labels),
        "--clips",
        "1",
        "--crops",
        "1",
        "--top-k",
        "9",
    )
    assert result.returncode == 0, result.stderr
    assert "long.mp4 (1 views)" in result.stdout and "3. " in result.stdout and "4. " not in result.stdout
    assert "alpha" in result.stdout
    assert (
        main(["predict", str(assets.videos / "long.mp4"), "--checkpoint", str(assets.classifier), "--labels", "k400"])
        == 2
    )  # 400 names for a 3-class model


def test_predict_rejects_bad_inputs(assets, capsys):
    pretrain = run_cli("predict", str(assets.videos / "long.mp4"), "--checkpoint", str(assets.pretrain))
    assert_user_error(pretrain, "not a classifier")
    from videomae.cli import main

    assert main(["predict", str(assets.videos), "--checkpoint", str(assets.classifier), "--top-k", "0"]) == 2
    assert "--top-k must be at least 1" in capsys.readouterr().err


def test_predict_defaults_to_the_training_preprocessing_and_warns_on_conflicts(assets, tmp_path):
    import shutil

    from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing

    trained = tmp_path / "trained"
    shutil.copytree(assets.classifier, trained)
    write_preprocessing(
        Preprocessing(
            num_frames=4, sampling_rate=2, input_size=32, short_side_size=40, test_num_segment=2, test_num_crop=1
        ),
        trained,
    )
    video = str(assets.videos / "long.mp4")
    result = run_cli("predict", video, "--checkpoint", str(trained), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["views"] == 2 and "warning" not in result.stderr
    override = run_cli("predict", video, "--checkpoint", str(trained), "--json", "--sampling-rate", "3")
    assert override.returncode == 0, override.stderr
    assert "sampling rate 3 differs from the 2 the model was trained with" in override.stderr
    assert "preprocessing.json" in override.stderr


def test_predict_reports_each_bad_video_and_classifies_the_rest(assets):
    result = run_cli(
        "predict",
        str(assets.corrupt),
        str(assets.videos / "short.mp4"),
        "--checkpoint",
        str(assets.classifier),
        "--json",
        "--clips",
        "1",
        "--crops",
        "1",
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first, second = json.loads(result.stdout)
    assert first["video"].endswith("corrupt.mp4") and first["error"] and "top_k" in second
    assert "corrupt.mp4" in result.stderr and "1 of 2 videos could not be read" in result.stderr


def test_predict_shows_the_class_names_of_a_hugging_face_export(assets, tmp_path, capsys):
    from videomae.checkpoint import save_hf
    from videomae.cli import main
    from videomae.factory import create_model

    export = save_hf(create_model(pretrained=str(assets.classifier)), tmp_path / "hf", labels=["up", "down", "flat"])
    assert (
        main(
            [
                "predict",
                str(assets.videos / "short.mp4"),
                "--checkpoint",
                str(export),
                "--clips",
                "1",
                "--crops",
                "1",
                "--top-k",
                "3",
                "--json",
            ]
        )
        == 0
    )
    (prediction,) = json.loads(capsys.readouterr().out)
    assert {entry["label"] for entry in prediction["top_k"]} == {"up", "down", "flat"}
