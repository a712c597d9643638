"""A steady-state training step reads nothing back from the device (on a GPU each read would stall the queue).

On the CPU "reading back" means calling a tensor method that returns a host value: `item`, `tolist`, `numpy`,
`__float__`, `__int__`, `__bool__`, `__index__`. The test counts those calls in the main process while steps run;
the data loading runs in a worker process, as in real training, so the masks' host work there is not counted.
On a GPU, bench/gpu_check.py runs the same steps under `torch.cuda.set_sync_debug_mode("error")`.
"""

from __future__ import annotations

import collections
import traceback

import pytest
import torch

from videomae.data.loader import run_batches
from videomae.training.engine import Trainer

READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")


def count_reads(monkeypatch) -> dict[str, list[str]]:
    """{method: [the line that called it]} of the host reads made from now on (until monkeypatch undoes it)."""
    calls = collections.defaultdict(list)
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name].append(traceback.format_stack(limit=2)[0].strip())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize(
    "recipe, overrides",
    [
        ("tiny", []),
        (
            "tiny_finetune",
            ["data.mixup=0.8", "data.cutmix=1.0", "optim.clip_grad=1.0", "accum_steps=2", "batch_size=4"],
        ),
    ],
    ids=["pretrain", "finetune with mixup, clipping and accumulation"],
)
def test_steady_state_steps_read_nothing_back(tiny_recipe, tmp_path, monkeypatch, recipe, overrides):
    trainer = Trainer(tiny_recipe(recipe, tmp_path, "data.num_workers=1", "val_every=0", *overrides))
    trainer.setup()
    with run_batches(trainer.build_train_loader(0), 0, trainer.d.device) as batches:
        trainer.train_step(batches, 0)  # the first step fills the per-device caches (position tables, statistics)
        reads = count_reads(monkeypatch)
        stats = [trainer.train_step(batches, step) for step in (1, 2)]
        made = {name: where for name, where in reads.items() if where}
        monkeypatch.undo()
    assert made == {}, made
    assert all(s.loss.dim() == 0 and s.stepped.dtype == torch.bool for s in stats)  # results stay tensors
    assert [s.step for s in stats] == [2, 3] and all(bool(s.stepped) for s in stats)


def test_the_counter_sees_a_read(monkeypatch):
    reads = count_reads(monkeypatch)
    float(torch.ones(()))
    monkeypatch.undo()
    assert len(reads["__float__"]) == 1
