"""VideoMAE V2's decoder-masking ablation (paper Table 1) in miniature, on the demo's moving digits.

    python bench/dual_masking.py --output runs/dual_masking                 # every setting, seeds 0 1 2
    python bench/dual_masking.py --output runs/dual_masking --seeds 3 4     # more seeds into the same folder
    python bench/dual_masking.py --output runs/dual_masking --table         # only the table of what is finished
    python bench/dual_masking.py --quick --output /tmp/dual_masking         # seconds: the pipeline (CI)

Every setting pretrains the demo's tiny VideoMAE V2 on the demo's unlabelled clips with the demo's recipe and
budget, changing only the masks (paper Table 1's decoder masks under its 90% tube encoder mask, and running cell
50% under the demo's encoder mask) or the loss, then fine-tunes it on the
labelled clips with the demo's recipe and tests it: `videomae.demo.run.pretrain` and `finetune`, runs of the
training engine. A seed gives every setting the same clips, initialisation and fine-tuning order, so settings are
also compared seed by seed ("paired"). "scratch" fine-tunes the same network from random weights.

Resumable: each (setting, seed) is a demo folder, OUTPUT/<setting>/seed<S>, whose results.json is written last;
a rerun skips the finished ones and continues an interrupted run from its checkpoint (a folder made with other
settings starts over). Each folder is locked while it trains, so several processes can work on one study: each
takes the cells no other holds (`python bench/dual_masking.py --output runs/dual_masking &` twice).

Costs, per setting: pretraining FLOPs per step (forward and backward, counted by
`torch.utils.flop_counter.FlopCounterMode` on the explicit attention path, so attention's matrix products are
counted), activation memory (tensors alive when backward starts, counted by storage), and wall and CPU seconds
per pretraining step, from the runs themselves. The table goes to OUTPUT/table.md and stdout; the last line of
stdout is a JSON summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from pretrain_step import saved_for_backward_mb  # bench/ is on sys.path when this runs as a script
from torch.utils.flop_counter import FlopCounterMode

from videomae.data.loader import collate_views, to_device
from videomae.demo.digits import CLASS_NAMES
from videomae.demo.run import (
    SUMMARY,
    DemoConfig,
    DemoData,
    build_data,
    finetune,
    prepare_folder,
    pretrain,
    pretrain_run,
    pretrain_task,
    write_atomically,
)
from videomae.training.files import OutputDirError, json_text
from videomae.training.run_dir import RunLock

RESULTS = SUMMARY[0]  # results.json: a demo folder's last output
SCRATCH = "scratch"


@dataclass(frozen=True)
class Setting:
    """One row of the study: DemoConfig fields on top of the demo's, and the paper's Table 1 row, if any."""

    name: str
    label: str
    fields: dict
    paper: tuple[float, float] | None = None  # (SSv2 top-1, GFLOPs), ViT-B, tube 90%, 800 epochs


PAPER_ENCODER_RATIO = 0.9  # paper Table 1: every decoder mask under a 90% tube encoder mask


# Pretraining FLOPs per step of "none" over "running cell 50%" on the demo's network, as this study counts them
# (4681 / 3312 MFLOPs): the epochs that give running cell 50% the pretraining compute of "none".
SAME_COMPUTE_EPOCHS = 4681 / 3312


def settings(base: DemoConfig) -> tuple[Setting, ...]:
    """Paper Table 1's decoder masks under its 90% tube encoder mask, running cell 50% with none's pretraining
    compute, and running cell 50% under the demo's encoder mask."""
    table1 = dict(mask_ratio=PAPER_ENCODER_RATIO)
    longer = dataclasses.replace(base.pretrain, epochs=round(base.pretrain.epochs * SAME_COMPUTE_EPOCHS))
    cell = dict(table1, decoder_mask_type="running_cell")
    return (
        Setting("none", "none (VideoMAE v1)", dict(table1, decoder_mask_ratio=0.0), (70.28, 35.48)),
        Setting(
            "frame_50", "frame 50%", dict(table1, decoder_mask_type="frame", decoder_mask_ratio=0.5), (69.76, 25.87)
        ),
        Setting(
            "random_50", "random 50%", dict(table1, decoder_mask_type="random", decoder_mask_ratio=0.5), (64.87, 25.87)
        ),
        Setting(
            "running_cell_50_all_decoded",
            "running cell 50%, loss on all decoded",
            dict(cell, decoder_mask_ratio=0.5, loss_on_all_decoded=True),
            (66.74, 25.87),
        ),
        Setting("running_cell_25", "running cell 25%", dict(cell, decoder_mask_ratio=0.25), (70.22, 31.63)),
        Setting("running_cell_50", "running cell 50%", dict(cell, decoder_mask_ratio=0.5), (70.15, 25.87)),
        Setting("running_cell_75", "running cell 75%", dict(cell, decoder_mask_ratio=0.75), (70.01, 21.06)),
        Setting(
            "running_cell_50_same_compute",
            f"running cell 50%, {longer.epochs} epochs (none's pretraining FLOPs)",
            dict(cell, decoder_mask_ratio=0.5, pretrain=longer),
        ),
        Setting(
            f"tube_{base.mask_ratio * 100:.0f}_running_cell_50",
            f"running cell 50%, encoder tube {base.mask_ratio:.0%} (the demo's)",
            dict(cell, decoder_mask_ratio=0.5, mask_ratio=base.mask_ratio),
        ),
    )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", "-o", default="runs/dual_masking", help="study folder (default runs/dual_masking)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", default=None, help="run only these settings (names; 'scratch' included)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quick", action="store_true", help="the demo's quick configuration: seconds, numbers mean nothing")
    p.add_argument("--table", action="store_true", help="train nothing: the table of the finished results")
    return p.parse_args(argv)


# ---- one (setting, seed) -----------------------------------------------------------------------------------------


def base_config(seed: int, quick: bool, threads: int) -> DemoConfig:
    return dataclasses.replace(DemoConfig.quick(seed) if quick else DemoConfig(seed=seed), threads=threads)


def step_costs(cfg: DemoConfig, data: DemoData) -> dict:
    """FLOPs and activation memory of one pretraining step of `cfg` on a batch of the pool, as the engine feeds it."""
    batch_size = cfg.pretrain.batch_size

    def loss_and_batch(**arch):
        task = pretrain_task(pretrain_run(cfg, len(data.pool), "", **arch), data.pool, cfg.seed)
        batch = to_device(collate_views([task.train_set[i] for i in range(batch_size)]), torch.device("cpu"))
        return lambda: task.loss(task.model, batch, np.random.default_rng(0))

    explicit = loss_and_batch(fused_attn=False)  # FlopCounterMode does not see the CPU's fused attention
    with FlopCounterMode(display=False) as counter:
        explicit().backward()
    trained = loss_and_batch()  # the memory of the model as it trains (fused attention)

    def step(before_backward):
        loss = trained()
        before_backward()
        loss.backward()

    return {"pretrain_flops_per_step": counter.get_total_flops(), "activation_mb": saved_for_backward_mb(step)}


def seconds_per_step(run_dir: str, batch_size: int) -> float:
    """Median wall seconds per step over the run's logged intervals (engine's clips/s: data, step, checkpoints)."""
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        return statistics.median(batch_size / json.loads(line)["clips_per_s"] for line in handle)


def train_setting(cfg: DemoConfig, data: DemoData, out_dir: str) -> dict:
    """Pretrain and fine-tune `cfg` in `out_dir` (continuing runs there); its results."""
    cpu = time.process_time()
    pretrained = pretrain(cfg, data, out_dir)
    cpu = time.process_time() - cpu
    tuned = finetune(cfg, data, out_dir, from_pretrained=True)
    steps_now = len(pretrained.losses)  # steps this call ran: CPU time is known for those only
    return {
        "acc1": tuned.test["acc1"],
        "per_class_acc1": tuned.test["per_class_acc1"],
        "pretrain_steps": pretrained.step,
        "pretrain_final_loss": pretrained.losses[-1] if pretrained.losses else None,
        "pretrain_wall_s_per_step": seconds_per_step(pretrained.output_dir, cfg.pretrain.batch_size),
        "pretrain_cpu_s_per_step": cpu / steps_now if steps_now else None,
        **step_costs(cfg, data),
    }


def train_scratch(cfg: DemoConfig, data: DemoData, out_dir: str) -> dict:
    tuned = finetune(cfg, data, out_dir, from_pretrained=False)
    return {"acc1": tuned.test["acc1"], "per_class_acc1": tuned.test["per_class_acc1"]}


def run_one(name: str, cfg: DemoConfig, data, out_dir: str, log) -> None:
    """Train one (setting, seed) unless it is finished or another process holds it (`data` is built when needed)."""
    os.makedirs(out_dir, exist_ok=True)
    lock = RunLock(out_dir)
    try:
        lock.acquire()
    except OutputDirError:
        log(f"== {name}, seed {cfg.seed}: another process is training it, skipped")
        return
    try:
        prepare_folder(cfg, out_dir, log)  # a folder of other settings starts over
        path = os.path.join(out_dir, RESULTS)
        if os.path.exists(path):
            return
        log(f"== {name}, seed {cfg.seed}: {out_dir}")
        start = time.perf_counter()
        train = train_scratch if name == SCRATCH else train_setting
        result = {"setting": name, "seed": cfg.seed, **train(cfg, data(), out_dir), "config": cfg.to_dict()}
        result["seconds"] = time.perf_counter() - start
        write_atomically(path, json_text(result, indent=1))  # last: the (setting, seed) is finished
    finally:
        lock.release()


def run_seed(args, rows: tuple[Setting, ...], seed: int, log) -> None:
    base = base_config(seed, args.quick, args.threads)
    data = functools.cache(lambda: build_data(base))  # the same clips for every setting, built only when needed
    for name, cfg in [(row.name, dataclasses.replace(base, **row.fields)) for row in rows] + [(SCRATCH, base)]:
        if args.only is None or name in args.only:
            run_one(name, cfg, data, os.path.join(args.output, name, f"seed{seed}"), log)


# ---- the table ---------------------------------------------------------------------------------------------------


def finished(out_dir: str, name: str) -> dict[int, dict]:
    """Results of a setting by seed, from its finished folders."""
    results, folder = {}, os.path.join(out_dir, name)
    for seed_dir in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, seed_dir, RESULTS)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                result = json.load(handle)
            results[result["seed"]] = result
    return results


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "-"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def summarize(out_dir: str, rows: tuple[Setting, ...]) -> dict:
    """Per setting: top-1 by seed, mean and sd, paired difference with no decoder mask, costs."""
    reference = finished(out_dir, "none")
    summary = {}
    for row in rows + (Setting(SCRATCH, "no pretraining (scratch)", {}),):
        results = finished(out_dir, row.name)
        if not results:
            continue
        seeds = sorted(results)
        first = results[seeds[0]]
        paired = [results[s]["acc1"] - reference[s]["acc1"] for s in seeds if s in reference and row.name != "none"]
        per_class = np.mean([results[s]["per_class_acc1"] for s in seeds], axis=0)
        summary[row.name] = {
            "label": row.label,
            "paper": row.paper,
            "seeds": seeds,
            "acc1": [results[s]["acc1"] for s in seeds],
            "paired_vs_none": paired,
            "per_class_acc1_mean": dict(zip(CLASS_NAMES, per_class.round(1).tolist())),
            **{
                key: first.get(key)
                for key in ("pretrain_flops_per_step", "activation_mb", "pretrain_steps", "pretrain_final_loss")
            },
            **{
                key: statistics.median(results[s][key] for s in seeds if results[s].get(key) is not None)
                for key in ("pretrain_wall_s_per_step", "pretrain_cpu_s_per_step")
                if any(results[s].get(key) is not None for s in seeds)
            },
        }
    return summary


def table(summary: dict) -> str:
    none_flops = summary.get("none", {}).get("pretrain_flops_per_step")
    lines = [
        "| setting | paper: SSv2 top-1 | paper: GFLOPs | top-1 % (mean ± sd) | per seed | paired Δ vs none "
        "| pretraining MFLOPs/step | vs none | pretraining TFLOP in all | activation MB | wall ms/step | CPU ms/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in summary.values():
        paper = entry["paper"] or ("-", "-")
        flops = entry.get("pretrain_flops_per_step")
        cost = [
            f"{flops / 1e6:.0f}" if flops else "-",
            f"{flops / none_flops:.2f}" if flops and none_flops else "-",
            f"{flops * entry['pretrain_steps'] / 1e12:.2f}" if flops and entry.get("pretrain_steps") else "-",
            f"{entry['activation_mb']:.1f}" if entry.get("activation_mb") else "-",
            *(
                f"{1000 * entry[key]:.0f}" if key in entry else "-"
                for key in ("pretrain_wall_s_per_step", "pretrain_cpu_s_per_step")
            ),
        ]
        lines.append(
            f"| {entry['label']} | {paper[0]} | {paper[1]} | {mean_sd(entry['acc1'])} | "
            f"{', '.join(f'{a:.1f}' for a in entry['acc1'])} | "
            f"{mean_sd(entry['paired_vs_none']) if entry['paired_vs_none'] else '-'} | " + " | ".join(cost) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = settings(base_config(0, args.quick, args.threads))
    names = {row.name for row in rows} | {SCRATCH}
    if args.only and not set(args.only) <= names:
        raise SystemExit(f"unknown settings {sorted(set(args.only) - names)}; choose from {sorted(names)}")
    os.makedirs(args.output, exist_ok=True)
    if not args.table:
        for seed in args.seeds:
            run_seed(args, rows, seed, log=lambda line: print(line, file=sys.stderr, flush=True))
    summary = summarize(args.output, rows)
    text = table(summary)
    write_atomically(os.path.join(args.output, "table.md"), text)
    write_atomically(os.path.join(args.output, "summary.json"), json_text(summary, indent=1))
    print(text)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
