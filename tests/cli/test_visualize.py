"""`videomae visualize` end to end: PNG grid and GIF from a pretraining checkpoint, clean failures."""

from __future__ import annotations

from PIL import Image

from tests.apps.fixtures import assert_user_error, assets, run_cli  # noqa: F401  (assets is a fixture)


def test_visualize_writes_grid_and_gif(assets, tmp_path):
    png, gif = tmp_path / "out" / "recon.png", tmp_path / "recon.gif"
    result = run_cli(
        "visualize",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(assets.pretrain),
        "--output",
        str(png),
        "--gif",
        str(gif),
        "--mask-ratio",
        "0.75",
        "--sampling-rate",
        "2",
    )
    assert result.returncode == 0, result.stderr
    grid = Image.open(png)
    assert grid.width > 4 * 96 and grid.height > 5 * 96  # 4 frames x 5 rows of at least 96 px
    animation = Image.open(gif)
    assert animation.n_frames == 4


def test_visualize_frame_folder_in_process(assets, tmp_path):
    from videomae.cli import main

    out = tmp_path / "frames.png"
    assert (
        main(
            [
                "visualize",
                str(assets.frames),
                "--checkpoint",
                str(assets.pretrain),
                "--output",
                str(out),
                "--mask-ratio",
                "0.5",
                "--decoder-mask-ratio",
                "0",
                "--start",
                "2",
                "--sampling-rate",
                "1",
            ]
        )
        == 0
    )
    assert out.is_file()


def test_visualize_rejects_classifier_and_bad_files(assets, tmp_path):
    classifier = run_cli(
        "visualize",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(assets.classifier),
        "--output",
        str(tmp_path / "x.png"),
    )
    assert_user_error(classifier, "needs a pretraining checkpoint")
    corrupt = run_cli(
        "visualize", str(assets.corrupt), "--checkpoint", str(assets.pretrain), "--output", str(tmp_path / "y.png")
    )
    assert_user_error(corrupt, "corrupt.mp4")
    from videomae.cli import main

    assert (
        main(
            [
                "visualize",
                str(assets.videos / "long.mp4"),
                "--checkpoint",
                str(assets.pretrain),
                "--output",
                str(tmp_path / "z.jpg"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "visualize",
                str(assets.videos / "long.mp4"),
                "--checkpoint",
                str(assets.pretrain),
                "--output",
                str(tmp_path / "z.png"),
                "--decoder-mask-ratio",
                "0.3",
            ]
        )
        == 2
    )


def test_visualize_masks_as_the_model_was_pretrained(assets, tmp_path):
    import shutil

    from videomae.checkpoint.preprocessing import Preprocessing, write_preprocessing

    trained = tmp_path / "trained"
    shutil.copytree(assets.pretrain, trained)
    write_preprocessing(
        Preprocessing(
            num_frames=4, sampling_rate=2, input_size=32, short_side_size=32, mask_ratio=0.75, decoder_mask_ratio=0.25
        ),
        trained,
    )
    result = run_cli(
        "visualize",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(trained),
        "--output",
        str(tmp_path / "recon.png"),
    )
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr and "tube 0.75, decoder running_cell 0.25;" in result.stderr
    other = run_cli(
        "visualize",
        str(assets.videos / "long.mp4"),
        "--checkpoint",
        str(trained),
        "--output",
        str(tmp_path / "other.png"),
        "--mask-ratio",
        "0.5",
    )
    assert other.returncode == 0 and "--mask-ratio 0.5 differs from the 0.75 the model was trained with" in other.stderr
