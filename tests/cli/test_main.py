"""The `videomae` entry point: every subcommand is there, has help with an example, and bad use exits non-zero."""

from __future__ import annotations

import pytest

from tests.apps.fixtures import run_cli
from videomae.cli import build_parser, main

SUBCOMMANDS = (
    "pretrain",
    "finetune",
    "eval",
    "probe",
    "distill",
    "extract",
    "predict",
    "visualize",
    "convert",
    "data",
    "demo",
)


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_top_level_help_lists_every_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", ("extract", "predict", "visualize", "demo"))
def test_product_commands_show_a_worked_example(name):
    text = _subparsers()[name].format_help()
    assert "example" in text and f"videomae {name}" in text


def test_every_subcommand_is_registered():
    assert set(SUBCOMMANDS) <= set(_subparsers())


@pytest.mark.parametrize("argv", (["no-such-command"], [], ["predict"], ["extract", "x", "--stride", "two"]))
def test_wrong_arguments_exit_non_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err
