"""`videomae extract` end to end: features and sidecars, resume, official preprocessing, bad inputs."""

from __future__ import annotations

import json

import numpy as np

from tests.apps.fixtures import assert_user_error, assets, run_cli  # noqa: F401  (assets is a fixture)

WINDOWS = ["--clip-len", "4", "--stride", "2", "--batch-size", "2"]


def test_extract_videos_and_frame_folder_then_resume(assets, tmp_path):
    out = tmp_path / "features"
    args = [
        str(assets.videos),
        str(assets.frames),
        "--checkpoint",
        str(assets.pretrain),
        "--output",
        str(out),
        *WINDOWS,
    ]
    first = run_cli("extract", *args)
    assert first.returncode == 0, first.stderr
    long = np.load(out / "long.npy")
    assert long.shape == (9, 32) and long.dtype == np.float32  # range(0, 20 - 4 + 1, 2)
    assert np.load(out / "short.npy").shape == (3, 32)
    assert np.load(out / "clip_a.npy").shape == (5, 32)
    sidecar = json.loads((out / "long.json").read_text())
    assert sidecar["window_starts"] == list(range(0, 17, 2)) and sidecar["stride"] == 2
    assert sidecar["fps"] > 0 and len(sidecar["checkpoint_sha256"]) == 64
    assert sidecar["model"]["embed_dim"] == 32 and "centre crop" in sidecar["preprocessing"]
    assert not list(out.glob("*.lock")) and not list(out.glob("*.tmp*"))

    second = run_cli("extract", *args)
    assert second.returncode == 0, second.stderr
    assert "already finished 3" in second.stderr


def test_official_tad_matches_the_official_transform(assets, tmp_path):
    from videomae.apps.extract import official_tad_clip
    from videomae.apps.inputs import InputVideo
    from videomae.apps.loading import load_model
    from videomae.cli import main

    out = tmp_path / "tad"
    code = main(
        [
            "extract",
            str(assets.videos / "long.mp4"),
            "--checkpoint",
            str(assets.pretrain),
            "--output",
            str(out),
            "--official-tad",
            "--clip-len",
            "4",
            "--stride",
            "4",
            "--input-size",
            "32",
        ]
    )
    assert code == 0
    features = np.load(out / "long.npy")
    sidecar = json.loads((out / "long.json").read_text())
    assert sidecar["official_tad"] and "no mean/std" in sidecar["preprocessing"]
    reader = InputVideo(str(assets.videos / "long.mp4"), "long").open()
    frames = reader.read([8, 9, 10, 11])  # the third window: 4 consecutive frames from 8
    model = load_model(str(assets.pretrain), kind="classifier")
    expected = model.forward_features(official_tad_clip(frames, 32)[None])[0].numpy()
    np.testing.assert_allclose(features[2], expected, rtol=1e-4, atol=1e-5)


def test_corrupt_video_is_reported_and_others_finish(assets, tmp_path):
    out = tmp_path / "mixed"
    result = run_cli(
        "extract",
        str(assets.corrupt),
        str(assets.videos / "short.mp4"),
        "--checkpoint",
        str(assets.pretrain),
        "--output",
        str(out),
        *WINDOWS,
    )
    assert_user_error(result, "corrupt: failed", "failed 1")
    assert (out / "short.npy").is_file() and not (out / "corrupt.npy").exists()


def test_bad_arguments_fail_cleanly(assets, tmp_path):
    missing = run_cli("extract", str(assets.videos), "--checkpoint", str(tmp_path / "nope"), "--output", str(tmp_path))
    assert_user_error(missing, "does not exist")
    from videomae.cli import main

    assert (
        main(
            [
                "extract",
                str(assets.videos),
                "--checkpoint",
                str(assets.pretrain),
                "--output",
                str(tmp_path),
                "--shard",
                "3/2",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "extract",
                str(tmp_path / "no_such_video.mp4"),
                "--checkpoint",
                str(assets.pretrain),
                "--output",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "extract",
                str(assets.videos),
                "--checkpoint",
                str(assets.pretrain),
                "--output",
                str(tmp_path),
                "--stride",
                "0",
            ]
        )
        == 2
    )


def test_extract_windows_look_like_training(assets, tmp_path):
    import shutil

    from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing

    trained = tmp_path / "trained"
    shutil.copytree(assets.pretrain, trained)
    write_preprocessing(Preprocessing(num_frames=4, sampling_rate=3, input_size=32, short_side_size=40), trained)
    result = run_cli(
        "extract",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(trained),
        "--output",
        str(tmp_path / "features"),
        "--stride",
        "2",
    )
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "features" / "long.json").read_text())
    assert (sidecar["clip_len"], sidecar["frame_interval"], sidecar["short_side"]) == (4, 3, 40)
    assert sidecar["window_starts"] == list(range(0, 20 - 10 + 1, 2))  # span (4 - 1) x 3 + 1 = 10 frames
    override = run_cli(
        "extract",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(trained),
        "--output",
        str(tmp_path / "other"),
        "--frame-interval",
        "1",
    )
    assert override.returncode == 0 and "--frame-interval 1 differs from the 3" in override.stderr


def test_worker_decoding_writes_the_serial_features(assets, tmp_path):
    """--num-workers 2: two spawned processes decode the videos (a corrupt one among them) while the model runs
    in the main process; every file equals the serial run's, byte for byte, and no lock is left behind."""
    runs = {}
    for workers in ("0", "2"):
        runs[workers] = out = tmp_path / f"workers_{workers}"
        inputs = [str(assets.videos), str(assets.corrupt), str(assets.frames)]
        result = run_cli(
            "extract",
            *inputs,
            "--checkpoint",
            str(assets.pretrain),
            "--output",
            str(out),
            *WINDOWS,
            "--num-workers",
            workers,
        )
        assert result.returncode == 1 and "corrupt: failed" in result.stderr, result.stderr
        assert "done 3," in result.stderr and "failed 1" in result.stderr
        assert not list(out.glob("*.lock")) and not list(out.glob("*.tmp*"))
    for name in ("long", "short", "clip_a"):
        assert (runs["2"] / f"{name}.npy").read_bytes() == (runs["0"] / f"{name}.npy").read_bytes()
        assert (runs["2"] / f"{name}.json").read_text() == (runs["0"] / f"{name}.json").read_text()
    assert json.loads((runs["2"] / "long.json").read_text())["precision"] == "fp32"  # "auto" on the CPU
