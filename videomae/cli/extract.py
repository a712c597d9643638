"""`videomae extract INPUT... --checkpoint CKPT --output DIR`: sliding-window clip features for TAD."""

from __future__ import annotations

import argparse
import sys

from videomae.cli.args import add_checkpoint_arguments, add_command, add_runtime_arguments
from videomae.errors import DataError

EXAMPLE = """\
examples:
  # THUMOS14-style features, as the official script computes them (16 frames every 4, 224x224, no mean/std)
  videomae extract videos/ --checkpoint vit_g_hybrid_pt_1200e_k710_ft.pth --model vit_giant_patch14_224 \\
      --output features/ --official-tad --stride 4
  # several processes share one list safely (each claims videos with a lock file); or use --shard i/n
  for gpu in 0 1 2 3; do videomae extract --list videos.txt --checkpoint CKPT --output features/ \\
      --device cuda:$gpu & done
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "extract",
        "sliding-window clip features for temporal action localization (one .npy per video)",
        "Extract one pooled feature per sliding window of every video. Writes OUT/ID.npy (float32, windows x D) "
        "and OUT/ID.json (model, checkpoint SHA-256, fps, stride, window starts). Finished videos are skipped, "
        "so a run can be resumed or shared by several processes.",
        EXAMPLE,
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="video files, frame folders, or folders holding videos / frame folders",
    )
    parser.add_argument("--list", dest="list_file", metavar="FILE", help="text file with one input per line")
    add_checkpoint_arguments(parser, "classifier or pretraining checkpoint", "vit_giant_patch14_224")
    parser.add_argument("--output", "-o", required=True, help="output folder")
    parser.add_argument(
        "--clip-len", type=int, help="frames per window (default: the model's clip length, as trained; official TAD 16)"
    )
    parser.add_argument("--stride", type=int, default=4, help="frames between window starts (default 4)")
    parser.add_argument(
        "--frame-interval",
        type=int,
        help="frames between sampled frames (default: the training sampling rate; 1 without a "
        "record of it, or with --official-tad)",
    )
    parser.add_argument(
        "--official-tad",
        action="store_true",
        help="official TAD preprocessing: resize to 224x224 without keeping aspect, no mean/std",
    )
    parser.add_argument("--input-size", type=int, help="model input side (default: the model's img_size)")
    parser.add_argument(
        "--short-side", type=int, help="short side before the centre crop (default: as trained, else the input size)"
    )
    parser.add_argument("--shard", metavar="i/n", help="take only videos i, i+n, ... of the list")
    add_runtime_arguments(parser, "windows per forward pass (default 8)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from videomae.apps.extract import ExtractConfig, extract_all, parse_shard
    from videomae.apps.inputs import discover_inputs, read_list_file
    from videomae.apps.loading import TrainedSettings, checkpoint_sha256, load_model
    from videomae.devices import pick_device, resolved_precision

    paths = list(args.inputs) + (read_list_file(args.list_file) if args.list_file else [])
    if not paths:
        raise DataError("no inputs: give video files or folders, or --list FILE")
    videos = discover_inputs(paths, unique_ids=True)
    shard = parse_shard(args.shard)
    device = pick_device(args.device)
    model = load_model(args.checkpoint, args.model, kind="classifier").to(device)
    input_size = args.input_size or model.config.image_hw[0]
    # the official TAD recipe fixes its own windows (16 consecutive frames); otherwise windows look like training
    trained = TrainedSettings() if args.official_tad else TrainedSettings.of(args.checkpoint)
    cfg = ExtractConfig(
        clip_len=trained.pick(
            "--clip-len", args.clip_len, "num_frames", 16 if args.official_tad else model.config.num_frames
        ),
        stride=args.stride,
        frame_interval=trained.pick("--frame-interval", args.frame_interval, "sampling_rate", 1),
        batch_size=args.batch_size,
        precision=resolved_precision(args.precision, device),
        official_tad=args.official_tad,
        input_size=input_size,
        short_side=trained.pick("--short-side", args.short_side, "short_side_size", input_size),
    ).validate()
    run_info = {
        "model": model.config.to_dict(),
        "checkpoint": args.checkpoint,
        "checkpoint_sha256": checkpoint_sha256(args.checkpoint),
        "feature_dim": model.num_features,
    }
    print(
        f"extracting {len(videos)} video(s) -> {args.output} ({cfg.preprocessing}; clip {cfg.clip_len}, "
        f"stride {cfg.stride}; {cfg.precision} on {device})",
        file=sys.stderr,
    )
    summary = extract_all(
        model,
        videos,
        args.output,
        cfg,
        device,
        run_info=run_info,
        shard=shard,
        backend=args.backend,
        num_workers=args.num_workers,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(
        f"done {summary.done}, already finished {summary.skipped_finished}, taken by other processes "
        f"{summary.skipped_locked}, failed {summary.failed}",
        file=sys.stderr,
    )
    return 1 if summary.failed else 0
