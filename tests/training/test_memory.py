import os
import subprocess
import sys

import pytest

from videomae.training.memory import limit_heap_slack, resolve_threshold, thp_tensors


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
