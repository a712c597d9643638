"""Sampler sharding, determinism and exact resume; the view collate."""

from __future__ import annotations

import pytest
import torch

from videomae.data import ShardedSampler, collate_views


def indices(sampler):
    return [index for _, index in sampler]


def test_ranks_partition_one_permutation():
    ranks = [ShardedSampler(10, shuffle=True, seed=1, rank=r, world_size=3) for r in range(3)]
    for sampler in ranks:
        sampler.set_epoch(4)
    parts = [indices(s) for s in ranks]
    assert all(len(p) == 4 for p in parts)  # padded to 12 by wrapping
    assert set(sum(parts, [])) == set(range(10))


def test_epochs_differ_and_repeat():
    sampler = ShardedSampler(20, shuffle=True, seed=0)
    sampler.set_epoch(0)
    first = indices(sampler)
    sampler.set_epoch(1)
    assert indices(sampler) != first
    sampler.set_epoch(0)
    assert indices(sampler) == first
    assert all(epoch == 0 for epoch, _ in sampler)


def test_drop_last_cuts_tail():
    assert len(indices(ShardedSampler(10, shuffle=False, rank=1, world_size=3, drop_last=True))) == 3


def test_resume_skips_consumed_samples_once():
    full = ShardedSampler(16, shuffle=True, seed=2, rank=1, world_size=2)
    full.set_epoch(3)
    expected = indices(full)
    resumed = ShardedSampler(16, shuffle=True, seed=2, rank=1, world_size=2, start_sample=10)  # 5 per rank
    resumed.set_epoch(3)
    assert len(resumed) == 3
    assert indices(resumed) == expected[5:]
    assert indices(resumed) == expected  # the next iteration is a full epoch again


def test_a_position_means_the_same_samples_for_any_number_of_processes():
    def epoch(world_size: int, start_sample: int = 0) -> list[list[int]]:
        ranks = [
            ShardedSampler(24, shuffle=True, seed=5, rank=r, world_size=world_size, start_sample=start_sample)
            for r in range(world_size)
        ]
        for sampler in ranks:
            sampler.set_epoch(2)
        return [indices(sampler) for sampler in ranks]

    [alone] = epoch(1)  # the order one process consumes
    two = epoch(2)
    assert [two[r][k] for k in range(12) for r in range(2)] == alone  # two processes interleave the same order
    [after_two] = epoch(1, start_sample=8)  # 2 processes x 4 samples consumed, then 1 process
    assert after_two == alone[8:]


def test_a_rank_takes_exactly_its_steps_worth_of_an_epoch():
    sampler = ShardedSampler(25, shuffle=True, seed=0, rank=0, world_size=2, drop_last=True, samples_per_rank=8)
    assert len(sampler) == 8 and len(indices(sampler)) == 8


def test_collate_views_order():
    batch = [
        {"video": torch.tensor([[0], [1]]), "label": torch.tensor([7, 7])},
        {"video": torch.tensor([[10], [11]]), "label": torch.tensor([8, 8])},
    ]
    out = collate_views(batch)
    assert out["video"].flatten().tolist() == [0, 1, 10, 11] and out["label"].tolist() == [7, 7, 8, 8]


def test_a_worker_dying_at_shutdown_does_not_hide_the_error_that_ended_the_pass(monkeypatch):
    from videomae.data import loader as loader_module

    def dying_shutdown(iterator):
        raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Aborted.")

    monkeypatch.setattr(loader_module, "_stop_workers", dying_shutdown)
    data = torch.utils.data.DataLoader(list(range(4)), batch_size=2)
    with pytest.raises(ValueError, match="the model failed"):
        with loader_module.worker_batches(data) as batches:
            next(batches)
            raise ValueError("the model failed")
    with pytest.raises(RuntimeError, match="killed by signal"):  # a pass that ended well still reports it
        with loader_module.worker_batches(data) as batches:
            list(batches)
