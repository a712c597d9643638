import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from videomae.errors import ConfigError
from videomae.training.memory import apply_memory_policy, limit_heap_slack, resolve_threshold, thp_tensors


def test_zero_keeps_the_default():
    assert limit_heap_slack(0) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_threshold_is_applied_on_glibc():
    assert limit_heap_slack(1) is True


@pytest.mark.parametrize("env, expected", [("1", 2), ("0", 0), ("", 0), ("yes", 0)])
def test_auto_threshold_only_with_tensors_on_huge_pages(monkeypatch, env, expected):
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", env)
    assert thp_tensors() is bool(expected)
    assert resolve_threshold(None) == expected
    assert resolve_threshold(4) == 4 and resolve_threshold(0) == 0  # an explicit setting always wins


def _thp_env_after(code: str, env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    code += "; import os; print(os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset'))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_import_videomae_before_torch_puts_tensors_on_huge_pages():
    assert _thp_env_after("import videomae", None) == "1"
    assert _thp_env_after("import videomae", "0") == "0"  # the user's opt-out is kept
    assert _thp_env_after("import torch; import videomae", None) == "unset"  # too late to matter: left alone


# --------------------------------------------------------------------------------------------------
# The caching allocator (cpu_cache.cpp): each test runs in a fresh process, as the cache is process-wide
# --------------------------------------------------------------------------------------------------

needs_compiler = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")),
    reason="the CPU tensor cache is built with a C++ compiler on Linux")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@needs_compiler
def test_cache_reuses_freed_blocks_and_never_maps_past_the_high_water():
    _run("""
        import videomae, torch
        from videomae.training.memory import apply_memory_policy, cpu_cache_stats
        assert apply_memory_policy("cache") == "cache"
        MB = 1 << 20
        def tensor(mb, value):  # float32, mb MiB
            return torch.full((mb * MB // 4,), float(value))
        a = tensor(8, 7); first = a.data_ptr(); del a
        b = torch.empty(2 * MB)
        assert b.data_ptr() == first  # the same size: the freed block
        del b
        c = tensor(5, 1)
        assert c.data_ptr() == first and c.sum().item() == 5 * MB // 4  # down to half as large: reused, writable
        del c
        d = tensor(3, 0)
        assert d.data_ptr() != first and d.sum().item() == 0  # less than half: a block of its own
        # 3 MiB in use + the cached 8 MiB block would exceed the 8 MiB ever in use: the cached block is unmapped
        stats = cpu_cache_stats()
        assert stats["cached_bytes"] == 0 and stats["used_bytes"] == 3 * MB, stats
        assert stats["high_water_bytes"] == 8 * MB and stats["maps"] == 2, stats
        assert apply_memory_policy("glibc") == "cache"  # installed for good: say so, do not pretend otherwise
        small = torch.empty(MB // 8)  # under 1 MiB: PyTorch's default allocator
        assert cpu_cache_stats()["used_bytes"] == 3 * MB
    """)


_TRAIN_STEPS = """
    import json, sys, videomae, torch
    from videomae import create_model
    from videomae.masking import make_mask, token_grid
    from videomae.training.config import OptimConfig
    from videomae.training.memory import apply_memory_policy, cpu_cache_stats
    from videomae.training.objective import pretraining_loss
    from videomae.training.optim import build_optimizer
    policy = apply_memory_policy(sys.argv[1])
    torch.manual_seed(0)
    model = create_model("pretrain_videomae_small_patch16_224", img_size=128, decoder_embed_dim=384)
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.05))
    cfg, gen = model.config, torch.Generator().manual_seed(0)
    grid = token_grid(cfg.num_frames, cfg.image_hw, cfg.tubelet_size, cfg.patch_size)
    losses = []
    for _ in range(3):
        video = torch.randn(2, 3, cfg.num_frames, *cfg.image_hw, generator=gen)
        enc, dec = make_mask("tube", 2, grid, 0.9, generator=gen), make_mask("running_cell", 2, grid, 0.5, generator=gen)
        loss = pretraining_loss(model(video, enc, dec), video, enc, dec, cfg.tubelet_size, cfg.patch_size)
        loss.backward(); optimizer.step(); optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    weights = sum(float(p.double().sum()) for p in model.parameters())
    print(json.dumps({"policy": policy, "losses": losses, "weights": weights, "cache": cpu_cache_stats()}))
"""


@needs_compiler
def test_training_under_the_cache_is_bit_identical_to_glibc():
    import json

    script = textwrap.dedent(_TRAIN_STEPS)
    runs = {}
    for policy in ("glibc", "cache"):
        done = subprocess.run([sys.executable, "-c", script, policy], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[policy] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["cache"]["policy"] == "cache" and runs["cache"]["cache"]["maps"] > 10  # activations went through it
    assert runs["glibc"]["cache"] is None
    assert runs["cache"]["losses"] == runs["glibc"]["losses"]
    assert runs["cache"]["weights"] == runs["glibc"]["weights"]


@needs_compiler
def test_forked_dataloader_workers_allocate_through_the_inherited_cache():
    out = _run("""
        import videomae, torch
        from videomae.training.memory import apply_memory_policy
        apply_memory_policy("cache")
        keep = [torch.full((1 << 20,), float(i)) for i in range(4)]  # 4 MiB blocks in use and cached at fork
        del keep[1:]
        class Clips(torch.utils.data.Dataset):
            def __len__(self): return 8
            def __getitem__(self, i): return torch.full((3, 512, 512), float(i)).mean()
        loader = torch.utils.data.DataLoader(Clips(), batch_size=2, num_workers=2,
                                             multiprocessing_context="fork")
        print(sorted(float(x) for batch in loader for x in batch))
    """)
    assert out.splitlines()[-1] == str([float(i) for i in range(8)])


def test_auto_falls_back_to_glibc_without_a_compiler(monkeypatch, tmp_path):
    monkeypatch.setattr("videomae.training.memory._cache_lib", None)  # as in a process that never installed it
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert apply_memory_policy("glibc", 0) == "glibc"
    if sys.platform.startswith("linux"):
        with pytest.raises(ConfigError, match="cpu_allocator='cache' is unavailable: cannot run the C\\+\\+ "
                                              "compiler.*cpu_allocator=glibc"):
            apply_memory_policy("cache", 0)
    assert apply_memory_policy("auto", 0) == "glibc"
    with pytest.raises(ConfigError, match="cpu_allocator must be one of"):
        apply_memory_policy("jemalloc")


def test_auto_keeps_glibc_for_gpu_training(monkeypatch, tmp_path):
    # never reaches the compiler: a GPU run's large CPU tensors are its initial weights, not reused activations
    monkeypatch.setattr("videomae.training.memory._cache_lib", None)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr("videomae.training.memory.install_cpu_cache",
                        lambda: pytest.fail("auto must not install the cache for a GPU run"))
    assert apply_memory_policy("auto", 0, device_type="cuda") == "glibc"
