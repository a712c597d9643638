"""`videomae visualize VIDEO --checkpoint CKPT`: a PNG grid (and a GIF) of a pretraining model's reconstruction."""

from __future__ import annotations

import argparse
import os
import sys

from videomae.cli.args import add_checkpoint_arguments, add_command
from videomae.errors import CheckpointError, ConfigError

EXAMPLE = """\
examples:
  videomae visualize clip.mp4 --checkpoint runs/tiny --output recon.png
  videomae visualize clip.mp4 --checkpoint vit_b_hybrid_pt_800e.pth --model pretrain_videomae_base_patch16_224 \\
      --mask-ratio 0.9 --decoder-mask-ratio 0.5 --gif recon.gif
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "visualize",
        "picture a pretraining model's masked reconstruction of a clip (PNG grid and GIF)",
        "Mask a clip (tube encoder mask, running-cell decoder mask), reconstruct it with a pretraining checkpoint "
        "and draw rows: original, encoder-visible input, decoder-kept positions, reconstruction (normalized "
        "predictions mapped back with each patch's own mean and std) and error.",
        EXAMPLE,
    )
    parser.add_argument("video", help="video file or frame folder")
    add_checkpoint_arguments(parser, "pretraining checkpoint with its decoder", "pretrain_videomae_base_patch16_224")
    parser.add_argument("--output", "-o", default="reconstruction.png", help="PNG grid (default reconstruction.png)")
    parser.add_argument("--gif", help="also write an animated GIF here")
    parser.add_argument("--mask-type", help="encoder mask: tube, random or frame (default: as trained, else tube)")
    parser.add_argument("--mask-ratio", type=float, help="encoder mask ratio (default: as trained, else 0.9)")
    parser.add_argument(
        "--decoder-mask-ratio",
        type=float,
        help="running-cell decoder mask ratio; 0 = reconstruct all hidden tokens (default: as trained, else 0.5)",
    )
    parser.add_argument("--sampling-rate", type=int, help="frame interval of the clip (default: as trained, else 4)")
    parser.add_argument("--start", type=int, help="first frame of the clip (default: the centred clip)")
    parser.add_argument("--seed", type=int, default=0, help="mask seed")
    parser.add_argument("--scale", type=int, help="pixel enlargement of each frame (default: at least 96 px)")
    parser.add_argument("--backend", default="pyav", help="video decoder: pyav, decord, torchcodec or auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from videomae.apps.inputs import discover_inputs
    from videomae.apps.loading import TrainedSettings, load_model
    from videomae.apps.visualize import grid_image, reconstruct, save_gif
    from videomae.data.sampling import dense_val_indices
    from videomae.data.transforms import val_clip
    from videomae.errors import DataError
    from videomae.masking import MaskSpec

    if args.sampling_rate is not None and args.sampling_rate < 1:
        raise ConfigError(f"--sampling-rate must be at least 1, got {args.sampling_rate}")
    if not args.output.lower().endswith(".png"):
        raise ConfigError(f"--output must be a .png file, got {args.output!r}")
    videos = discover_inputs([args.video])
    if len(videos) != 1:
        raise DataError(f"{args.video} holds {len(videos)} videos; give one video file or frame folder")
    model = load_model(args.checkpoint, args.model)
    if model.config.kind != "pretrain":
        raise CheckpointError(
            f"{args.checkpoint} holds a {model.config.kind} without a decoder; visualize needs a "
            f"pretraining checkpoint (from `videomae pretrain` or an official *_pt_*.pth)"
        )
    trained = TrainedSettings.of(args.checkpoint)
    rate = trained.pick("--sampling-rate", args.sampling_rate, "sampling_rate", 4)
    masks = MaskSpec(
        mask_type=trained.pick("--mask-type", args.mask_type, "mask_type", "tube"),
        mask_ratio=trained.pick("--mask-ratio", args.mask_ratio, "mask_ratio", 0.9),
        decoder_mask_type=trained.pick("decoder mask", None, "decoder_mask_type", "running_cell"),
        decoder_mask_ratio=trained.pick("--decoder-mask-ratio", args.decoder_mask_ratio, "decoder_mask_ratio", 0.5),
    )
    size, length = model.config.image_hw[0], model.config.num_frames
    reader = videos[0].open(args.backend)
    try:
        n = reader.num_frames
        if args.start is None:
            indices = dense_val_indices(n, length, rate, linspace=False)
        else:
            if not 0 <= args.start < n:
                raise DataError(f"--start {args.start} is outside the video's {n} frames")
            indices = np.minimum(args.start + np.arange(length) * rate, n - 1)
        frames = reader.read(indices.tolist())
    finally:
        reader.close()
    video = val_clip(frames, size, size).unsqueeze(0)  # (1, 3, T, S, S)
    result = reconstruct(model, video, masks, args.seed)
    described = (
        f"{masks.mask_type} {masks.mask_ratio:g}, decoder {masks.decoder_mask_type} {masks.decoder_mask_ratio:g}"
    )
    title = f"{os.path.basename(args.video)}: {described}, loss {result.loss:.3f}"
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    grid_image(result, args.scale, title).save(args.output)
    print(
        f"wrote {args.output} ({described}; reconstruction loss {result.loss:.4f} on normalized pixels)",
        file=sys.stderr,
    )
    if args.gif:
        save_gif(result, args.gif, args.scale)
        print(f"wrote {args.gif}", file=sys.stderr)
    return 0
