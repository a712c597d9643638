"""The package drops into a user's process: importing it changes nothing, and the model is plain autograd."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "videomae"


def test_importing_videomae_leaves_the_environment_unchanged():
    code = (
        "import json, os; before = dict(os.environ); "
        "import videomae, videomae.training.objective, videomae.training.parallelize; "
        "print(json.dumps([before, dict(os.environ)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent)
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert after == before


def _python_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_direct_aten_calls():
    offenders = [str(path.relative_to(PACKAGE)) for path in _python_files() if "torch.ops.aten" in path.read_text()]
    assert not offenders


def test_no_custom_autograd_functions():
    offenders = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base) for base in node.bases}
                if bases & {"torch.autograd.Function", "autograd.Function", "Function"}:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert not offenders
