"""GPU readiness, checked in one run whenever a session has a GPU: a JSON record and a short text summary.

    python bench/gpu_check.py --out DIR                # on the GPU machine: about 7 minutes on one H200
    python bench/gpu_check.py --dry --out DIR          # CPU, tiny shapes, gloo: what CI runs (tests/bench)

Sections, in order of value (each recorded as ok, failed with its traceback, or skipped with the reason; the
record is rewritten after every section, so a run cut short still reports what it did):

    environment         GPU, driver, torch, CUDA, cuDNN, SDPA backends, which dependencies import
    flash_attention     bf16 forward passes forced onto the flash SDPA kernel, against the default choice
    train_steps         the engine's `Trainer.train_step` on the ViT-B pretraining model: bf16 and fp32, with and
                        without activation checkpointing (compiled variants come last, see train_steps_compiled)
    sync_audit          steady-state `Trainer.train_step`s under torch.cuda.set_sync_debug_mode("error")
    engine_runs         tiny pretraining (with a resume), fine-tuning (with EMA) and eval, fp32 and bf16
    distributed         a one-process NCCL group: FSDP2 (bf16 parameters) and DDP, each saving and loading
    inference           predict and extract with decoding workers against the serial path (needs PyAV)
    data_loader         bench/data_loader.py with 16 workers: clips/s and bytes per clip to set against the step
    pretrain_step_mfu   bench/pretrain_step.py at a GPU-sized batch with --peak-tflops (MFU)
    train_steps_compiled  the train_steps matrix with compile=true

`--dry` runs the same code on the CPU with the tiny model, gloo and fewer steps, and skips compilation (inductor's
CPU build takes minutes) and the sync audit's debug mode (CUDA only). The GPU machine needs the project's
dependencies: PyAV is optional (the inference section is skipped without it); carry wheels for it, and for
safetensors if the image lacks it, and `pip install --no-index` them before the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing it
    sys.path.insert(0, str(REPO))

H200_BF16_DENSE_TFLOPS = 989.0  # H100/H200 SXM; bench/pretrain_step.py's MFU is against this
DEPENDENCIES = ("numpy", "safetensors", "torchvision", "PIL", "av")
PRECISIONS = ("bf16", "fp32")
TINY_ENCODER = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=64, depth=2, num_heads=4)
TINY_DECODER = dict(decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
AC_MODES = ("none", "selective")


class Skipped(Exception):
    """A section that does not apply here (the message says why)."""


@dataclass
class Context:
    dry: bool
    device: torch.device
    out: Path
    budget_s: float
    started: float = field(default_factory=time.monotonic)
    shared: dict = field(default_factory=dict)  # what one section leaves for a later one (exports)

    def time_left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


# ----------------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------------


def environment(ctx: Context) -> dict:
    record = {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpus": os.cpu_count(),
        "dependencies": {name: importable(name) for name in DEPENDENCIES},
    }
    if ctx.device.type == "cuda":
        properties = torch.cuda.get_device_properties(ctx.device)
        record.update(
            gpu=properties.name,
            capability=f"{properties.major}.{properties.minor}",
            memory_gib=round(properties.total_memory / 2**30, 1),
            driver=nvidia_smi("driver_version"),
            flash_sdpa_available=torch.backends.cuda.is_flash_attention_available(),
            sdpa_enabled={
                "flash": torch.backends.cuda.flash_sdp_enabled(),
                "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
                "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
                "math": torch.backends.cuda.math_sdp_enabled(),
            },
        )
    return record


def importable(name: str) -> str | None:
    """The module's version (or "yes"), None when it does not import."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return str(getattr(module, "__version__", "yes"))


def nvidia_smi(query: str) -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def flash_attention(ctx: Context) -> dict:
    """bf16 inference of both model kinds with SDPA forced onto the flash kernel, against the default choice."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    results = {}
    for name in ("pretrain", "classifier"):
        model, inputs = model_and_inputs(ctx, name)
        with torch.no_grad(), torch.autocast(ctx.device.type, dtype=torch.bfloat16):
            default = model(*inputs).float()
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                model(*inputs)  # warm-up
                ctx.synchronize()
                start = time.perf_counter()
                flash = model(*inputs).float()
                ctx.synchronize()
        results[name] = {
            "shape": list(flash.shape),
            "finite": bool(torch.isfinite(flash).all()),
            "max_abs_diff_vs_default": float((flash - default).abs().max()),
            "forward_ms": round(1000 * (time.perf_counter() - start), 2),
        }
        del model
    return results


def model_and_inputs(ctx: Context, kind: str):
    """ViT-B (the tiny test model when dry) in eval mode on the device, and a batch for it."""
    from videomae import create_model
    from videomae.masking import make_mask, token_grid

    if kind == "classifier":
        model = (
            create_model("vit_small_patch16_224", **TINY_ENCODER) if ctx.dry else create_model("vit_base_patch16_224")
        )
    elif ctx.dry:
        model = create_model("pretrain_videomae_small_patch16_224", **TINY_ENCODER, **TINY_DECODER)
    else:
        model = create_model("pretrain_videomae_base_patch16_224")
    model = model.to(ctx.device).eval()
    config = model.config
    batch = 2 if ctx.dry else 8
    video = torch.randn(batch, 3, config.num_frames, *config.image_hw, device=ctx.device)
    if kind == "classifier":
        return model, (video,)
    grid = token_grid(config.num_frames, config.image_hw, config.tubelet_size, config.patch_size)
    generator = torch.Generator().manual_seed(0)
    masks = [make_mask(t, batch, grid, r, generator=generator) for t, r in (("tube", 0.9), ("running_cell", 0.5))]
    return model, (video, *(mask.to(ctx.device) for mask in masks))


def step_config(ctx: Context, output_dir: Path, precision: str, ac: str, compile: bool):
    """The engine's config for the timed steps: ViT-B pretraining on synthetic clips (the tiny recipe when dry)."""
    from videomae.training import load_recipe

    # quoted: a bare `none` would be read as no value
    common = [f"output_dir={output_dir}", f"precision={precision}", f'activation_checkpointing="{ac}"']
    common += [f"compile={str(compile).lower()}", "tensorboard=false", "data.num_workers=0"]
    if ctx.dry:
        return load_recipe("tiny", common)
    synthetic = ["data.manifest=none", "data.synthetic.num_videos=32", "data.synthetic.num_frames=64"]
    synthetic += ["data.synthetic.height=256", "data.synthetic.width=320"]
    return load_recipe("vit_b_hybrid_pt", [*common, *synthetic, "batch_size=8"])


def prepared_trainer(ctx: Context, output_dir: Path, precision: str, ac: str, compile: bool):
    """A set-up Trainer and one batch from its own data pipeline, made once and reused (the data path is not
    what these steps time), on the device as the engine's prefetcher delivers it."""
    from videomae.data.loader import collate_views, to_device
    from videomae.training import Trainer

    trainer = Trainer(step_config(ctx, output_dir, precision, ac, compile))
    trainer.setup()
    if "batch" not in ctx.shared:
        batch = collate_views([trainer.task.train_set[(0, i)] for i in range(trainer.cfg.batch_size)])
        ctx.shared["batch"] = to_device(batch, ctx.device)
    return trainer, ctx.shared["batch"]


def timed_steps(ctx: Context, trainer, batch: dict, warmup: int, steps: int) -> dict:
    """Warm-up steps (compilation happens there), then timed ones through the engine's public step."""
    batches = itertools.repeat(batch)
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
    start = time.perf_counter()
    for step in range(warmup):
        trainer.train_step(batches, step)
    ctx.synchronize()
    warmup_s = time.perf_counter() - start
    times, results = [], []
    for step in range(warmup, warmup + steps):
        start = time.perf_counter()
        results.append(trainer.train_step(batches, step))  # its numbers stay on the device
        ctx.synchronize()
        times.append(time.perf_counter() - start)
    losses = [float(stats.loss) if bool(stats.stepped) else None for stats in results]
    clips = batch["video"].shape[0]
    result = {
        "clips_per_step": clips,
        "warmup_s": round(warmup_s, 2),
        "step_s_median": round(sorted(times)[len(times) // 2], 4),
        "clips_per_s": round(clips / sorted(times)[len(times) // 2], 1),
        "losses": losses,
        "finite": all(loss is not None for loss in losses),
    }
    if ctx.device.type == "cuda":
        result["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**30, 2)
    return result


def step_matrix(ctx: Context, compile: bool, minimum_s: float) -> dict:
    """bf16/fp32 x activation checkpointing none/selective, each a fresh Trainer; configurations that no longer
    fit in the budget are skipped."""
    results = {}
    for precision, ac in itertools.product(PRECISIONS, AC_MODES):
        name = f"{precision}_ac-{ac}" + ("_compiled" if compile else "")
        if ctx.time_left() < minimum_s:
            results[name] = {"skipped": f"less than {minimum_s:.0f} s of the budget left"}
            continue
        trainer, batch = prepared_trainer(ctx, ctx.out / "steps" / name, precision, ac, compile)
        try:
            results[name] = timed_steps(ctx, trainer, batch, *((1, 2) if ctx.dry else (3, 10)))
            if not compile and precision == "bf16" and ac == "selective":
                ctx.shared["audit"] = trainer, batch  # the engine's default setup, warm: the sync audit's subject
        finally:
            del trainer, batch
            release_memory()
    return results


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def train_steps(ctx: Context) -> dict:
    return step_matrix(ctx, compile=False, minimum_s=30)


def train_steps_compiled(ctx: Context) -> dict:
    if ctx.dry:
        raise Skipped("compile is left out of --dry: inductor's CPU build takes minutes")
    return step_matrix(ctx, compile=True, minimum_s=75)


def sync_audit(ctx: Context) -> dict:
    """Steady-state steps of the engine's default setup (bf16, selective AC) with every host-device
    synchronization an error: where the first one happens, in our code.

    Through the public `Trainer.train_step(batches, step)`, as `tests/training/test_host_sync.py` does on the CPU."""
    if "audit" not in ctx.shared:
        raise Skipped("train_steps did not leave its bf16 selective trainer")
    trainer, batch = ctx.shared.pop("audit")
    try:
        return audited_steps(ctx, trainer, batch)
    finally:
        del trainer, batch
        release_memory()


def audited_steps(ctx: Context, trainer, batch: dict, steps: int = 3) -> dict:
    batches = itertools.repeat(batch)
    trainer.train_step(batches, 100)  # one plain step first: the audit looks at the steady state
    if ctx.device.type != "cuda":
        for step in range(101, 101 + steps):
            trainer.train_step(batches, step)
        return {"applicable": False, "note": "no CUDA device: the steps ran without the debug mode"}
    ctx.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(101, 101 + steps):
            trainer.train_step(batches, step)
        return {"sync_free": True, "steps": steps}
    except RuntimeError as error:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if "/videomae/" in f.filename]
        return {
            "sync_free": False,
            "error": " ".join(str(error).split())[:300],
            "where": [f"{Path(f.filename).name}:{f.lineno} {f.name}: {f.line}" for f in frames[-4:]],
        }
    finally:
        torch.cuda.set_sync_debug_mode("default")


def engine_runs(ctx: Context) -> dict:
    """The engine end to end on the tiny recipes: pretraining with a resume (against an uninterrupted run),
    fine-tuning with EMA from its export, and eval of that, in fp32 and bf16."""
    return {precision: engine_run(ctx, precision) for precision in PRECISIONS}


def engine_run(ctx: Context, precision: str) -> dict:
    from videomae.training import load_recipe, run

    root = ctx.out / "engine" / precision
    quiet = ["tensorboard=false", "log_every=1000", f"precision={precision}"]
    pretrain = [*quiet, f"output_dir={root / 'pretrain'}"]
    run(load_recipe("tiny", [*pretrain, "max_steps=4", "save_every=2"]))
    resumed = run(load_recipe("tiny", [*pretrain, "max_steps=6"]))
    straight = run(load_recipe("tiny", [*quiet, f"output_dir={root / 'straight'}", "max_steps=6"]))
    finetune = [*quiet, "data.synthetic.num_videos=8", "data.num_sample=1", "val_every=0", "test_at_end=false"]
    tuned = run(
        load_recipe(
            "tiny_finetune",
            [*finetune, f"output_dir={root / 'finetune'}", f"pretrained={root / 'pretrain'}", "max_steps=4"]
            + ["ema_decay=0.9"],
        )
    )
    export = root / "finetune" / "export"
    ctx.shared["classifier"] = export
    evaluation = [*finetune, "stage=eval", f"output_dir={root / 'eval'}", f"pretrained={export}"]
    metrics = run(load_recipe("tiny_finetune", evaluation))
    differences = [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(resumed.losses, straight.losses[4:])]
    return {
        "resumed_losses": resumed.losses,
        "uninterrupted_losses": straight.losses[4:],
        "resume_max_relative_difference": max(differences),
        "finetune_losses": tuned.losses,
        "ema_export": (root / "finetune" / "export_ema").is_dir(),
        "eval_acc1": metrics["acc1"],
        "eval_views": metrics["num_views"],
    }


def distributed(ctx: Context) -> dict:
    """A one-process group (NCCL on the GPU, gloo when dry): FSDP2 with bf16 parameters writes a sharded
    checkpoint and DDP a full one; each loads into a fresh model of its kind, and the sharded one into a plain
    model too."""
    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    backend = "nccl" if ctx.device.type == "cuda" else "gloo"
    device_id = ctx.device if ctx.device.type == "cuda" else None
    dist.init_process_group(backend, rank=0, world_size=1, device_id=device_id, timeout=datetime.timedelta(seconds=120))
    try:
        return {"backend": backend, "fsdp": saved_and_loaded(ctx, "fsdp"), "ddp": saved_and_loaded(ctx, "ddp")}
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def saved_and_loaded(ctx: Context, parallel: str) -> dict:
    from torch.nn.parallel import DistributedDataParallel

    from videomae.training.config import OptimConfig
    from videomae.training.distributed import Dist
    from videomae.training.optim import build_optimizer
    from videomae.training.parallelize import apply_fsdp
    from videomae.training.state import full_model_state, is_sharded, load_newest_checkpoint, save_checkpoint

    d = Dist(0, 1, 0, ctx.device)
    output_dir = ctx.out / "distributed" / parallel

    def wrapped():
        """(the module to call, the model, its optimizer), the optimizer built on the sharded parameters."""
        model = tiny_classifier(ctx)
        if parallel == "fsdp":
            net = apply_fsdp(model, torch.bfloat16)
        else:
            net = DistributedDataParallel(model, device_ids=[0] if ctx.device.type == "cuda" else None)
        return net, model, build_optimizer(model, OptimConfig(lr=1e-3))

    net, model, optimizer = wrapped()
    video = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1)).to(ctx.device)
    with torch.autocast(ctx.device.type, dtype=torch.bfloat16):
        loss = net(video).float().pow(2).mean()
    loss.backward()
    optimizer.step()
    meta = {"step": 1, "model_config": model.config.to_dict()}
    save_checkpoint(str(output_dir), d, model, optimizer, meta=meta, scaler=None, ema=None, keep_last=1)
    saved = full_model_state(model)
    _, fresh, fresh_optimizer = wrapped()
    load_newest_checkpoint(str(output_dir), d, fresh, fresh_optimizer, scaler=None, ema=None)
    loaded = full_model_state(fresh)
    result = {
        "sharded": is_sharded(model),
        "files": sorted(p.name for p in (output_dir / "checkpoints" / "step_00000001").rglob("*") if p.is_file()),
        "weights_equal": all(torch.equal(loaded[k], v) for k, v in saved.items()),
    }
    if parallel == "fsdp":  # the sharded checkpoint into a plain model
        plain = tiny_classifier(ctx)
        load_newest_checkpoint(str(output_dir), d, plain, build_optimizer(plain, OptimConfig()), scaler=None, ema=None)
        result["plain_weights_equal"] = all(torch.equal(plain.state_dict()[k].cpu(), v) for k, v in saved.items())
    return result


def tiny_classifier(ctx: Context):
    from videomae import create_model

    torch.manual_seed(0)
    return create_model("vit_small_patch16_224", **TINY_ENCODER, num_classes=4).to(ctx.device)


def inference(ctx: Context) -> dict:
    """The fine-tuned tiny classifier of engine_runs on encoded videos: predict and extract with decoding workers
    equal the serial path, in the default precision of the device ("auto")."""
    if importable("av") is None:
        raise Skipped("PyAV is not installed: no videos to decode (carry its wheel to run this section)")
    if "classifier" not in ctx.shared:
        raise Skipped("engine_runs did not leave a fine-tuned export")
    from videomae.apps.extract import ExtractConfig, extract_all
    from videomae.apps.inputs import discover_inputs
    from videomae.apps.predict import Predictor
    from videomae.data.synthetic import write_synthetic_videos

    videos_dir = ctx.out / "inference" / "videos"
    write_synthetic_videos(str(videos_dir), num_videos=6, num_classes=4, num_frames=24, height=48, width=64)
    videos = discover_inputs([str(videos_dir)])
    checkpoint = str(ctx.shared["classifier"])
    workers = 1 if ctx.dry else 2
    predictions = {}
    for count in (0, workers):
        predictor = Predictor(checkpoint, ctx.device, clips=2, crops=2, sampling_rate=2, num_workers=count)
        start = time.perf_counter()
        predictions[count] = [p.to_dict() for p in predictor.predict_all(videos)]
        predictions[f"{count}_s"] = round(time.perf_counter() - start, 2)
    features = {}
    for count in (0, workers):
        out = ctx.out / "inference" / f"features_{count}"
        cfg = ExtractConfig(clip_len=4, stride=2, batch_size=4, input_size=32, short_side=32)
        summary = extract_all(predictor.model, videos, str(out), cfg, ctx.device, run_info={}, num_workers=count)
        features[count] = {p.name: p.read_bytes() for p in out.glob("*.npy")}, summary.done
    return {
        "precision": predictor.views.precision,
        "predict_equal": predictions[0] == predictions[workers],
        "predict_seconds": {"serial": predictions["0_s"], "workers": predictions[f"{workers}_s"]},
        "extract_equal": features[0] == features[workers],
        "extracted": features[workers][1],
    }


def pretrain_step_mfu(ctx: Context) -> dict:
    """bench/pretrain_step.py in its own process; its last output line is its JSON record."""
    if ctx.dry:
        size = ["--model", "pretrain_videomae_small_patch16_224", "--batch", "1", "--steps", "1", "--warmup", "0"]
        args = [*size, "--device", "cpu", "--threads", "1", "--peak-tflops", "0.2"]
    else:
        args = ["--batch", "32", "--steps", "10", "--warmup", "3", "--ac", "selective", "--device", "cuda"]
        args += ["--peak-tflops", str(H200_BF16_DENSE_TFLOPS)]
    command = [sys.executable, str(REPO / "bench" / "pretrain_step.py"), *args]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=environment)
    if done.returncode:
        raise RuntimeError(f"pretrain_step.py exited {done.returncode}: {done.stderr[-2000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    return {"command": " ".join(["python", "bench/pretrain_step.py", *args]), **record}


def data_loader(ctx: Context) -> dict:
    """bench/data_loader.py with 16 workers (the loader must keep up with the step it feeds); its JSON lines."""
    if ctx.dry:
        raise Skipped("left out of --dry: 16 decoding workers need the GPU machine's cores (CI measures nothing)")
    if importable("av") is None:
        raise Skipped("PyAV is not installed: no videos to decode (carry its wheel to run this section)")
    args = ["--clips", "32", "--batches", "8", "--workers", "2", "16", "--backends", "pyav"]
    command = [sys.executable, str(REPO / "bench" / "data_loader.py"), *args]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    if done.returncode:
        raise RuntimeError(f"data_loader.py exited {done.returncode}: {done.stderr[-2000:]}")
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {"command": " ".join(["python", "bench/data_loader.py", *args]), "records": records}


SECTIONS = (
    (environment, 5),
    (flash_attention, 20),
    (train_steps, 60),
    (sync_audit, 15),
    (engine_runs, 60),
    (distributed, 20),
    (inference, 30),
    (data_loader, 45),
    (pretrain_step_mfu, 60),
    (train_steps_compiled, 90),
)


# ----------------------------------------------------------------------------------------------------
# Running and recording
# ----------------------------------------------------------------------------------------------------


def run_section(ctx: Context, function, estimate_s: float) -> dict:
    if ctx.time_left() < estimate_s:
        return {"status": "skipped", "reason": f"{ctx.time_left():.0f} s of the budget left, needs ~{estimate_s} s"}
    start = time.monotonic()
    try:
        outcome = {"status": "ok", "result": function(ctx)}
    except Skipped as skip:
        outcome = {"status": "skipped", "reason": str(skip)}
    except Exception:
        outcome = {"status": "failed", "error": traceback.format_exc()[-4000:]}
    return {**outcome, "seconds": round(time.monotonic() - start, 1)}


def summary_line(name: str, outcome: dict) -> str:
    detail = outcome.get("reason") or (outcome.get("error", "").strip().splitlines() or [""])[-1]
    return f"{name:22s} {outcome['status']:8s} {outcome.get('seconds', 0):6.1f} s  {detail}"[:200]


def write(ctx: Context, record: dict) -> None:
    (ctx.out / "gpu_check.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    lines = [f"gpu_check {'--dry ' if ctx.dry else ''}on {ctx.device} ({record['started']})"]
    lines += [summary_line(name, outcome) for name, outcome in record["sections"].items()]
    (ctx.out / "gpu_check.txt").write_text("\n".join(lines) + "\n")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_check.json and gpu_check.txt")
    parser.add_argument("--dry", action="store_true", help="CPU, tiny shapes, gloo (CI)")
    parser.add_argument(
        "--budget-s", type=float, default=420.0, help="sections that would not fit in it are skipped (default 420)"
    )
    parser.add_argument("--only", help="comma-separated section names (default: all, in order)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        print("no CUDA device: run with --dry on the CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu") if args.dry else torch.device("cuda", 0)
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(args.dry, device, args.out.resolve(), args.budget_s)
    wanted = set(args.only.split(",")) if args.only else None
    record = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "dry": args.dry, "sections": {}}
    for function, estimate_s in SECTIONS:
        if wanted is None or function.__name__ in wanted:
            record["sections"][function.__name__] = run_section(ctx, function, estimate_s)
            write(ctx, record)
            print(summary_line(function.__name__, record["sections"][function.__name__]), file=sys.stderr, flush=True)
    record["seconds"] = round(time.monotonic() - ctx.started, 1)
    write(ctx, record)
    failed = [name for name, outcome in record["sections"].items() if outcome["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
