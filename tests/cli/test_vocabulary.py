"""One vocabulary across every subcommand's parser: the same option names mean the same thing everywhere, every
option has help with its default, old spellings parse but stay hidden, and `unetpp --help` imports no command."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import pytest

from unetpp.cli.main import COMMANDS, STARTERS, SUMMARIES, build_parser, main, overview
from unetpp.cli.options import HIDDEN


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


PARSERS = _subparsers()
# option -> (dest, argparse type name or None, choices or None): one meaning wherever it appears
CANONICAL = {
    "--batch-size": ("batch_size", "positive integer", None),
    "--static-batch": ("batch", "positive integer", None),
    "--threads": ("threads", "positive integer", None),
    "--warmup": ("warmup", "integer >= 0", None),
    "--device": ("device", None, ("cpu", "cuda")),
    "--overwrite": ("overwrite", None, None),
}
# commands whose results go to a folder or file named by -o/--output
OUTPUT_COMMANDS = ("infer", "predict", "evaluate", "run", "train", "bench", "export", "compile")


def _options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _visible(a: argparse.Action) -> list[str]:
    return [s for s in a.option_strings if s not in getattr(a, "hidden_aliases", ())]


def test_every_command_has_a_summary_and_a_parser() -> None:
    assert sorted(PARSERS) == sorted(COMMANDS) == sorted(SUMMARIES)
    assert all(SUMMARIES[c] for c in COMMANDS)
    text = overview()
    for name in COMMANDS:
        assert f"  {name} " in text
    for name in STARTERS:
        assert f"unetpp {name}" in text
    assert "exit codes" in text


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    p = PARSERS[name]
    formatter = p._get_formatter()
    for a in p._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        assert a.help and a.help != argparse.SUPPRESS, f"{name} {a.option_strings or a.dest}: no help"
        if a.option_strings and a.default not in (None, False):
            assert "default" in formatter._get_help_string(a).lower(), f"{name} {a.option_strings}: default"


@pytest.mark.parametrize("name", COMMANDS)
def test_old_spellings_are_hidden_and_canonical_names_mean_one_thing(name: str) -> None:
    for a in _options(PARSERS[name]):
        shown = _visible(a)
        assert shown, a.option_strings
        assert not set(shown) & HIDDEN, f"{name}: {shown} shows an old spelling"
        for opt in shown:
            if opt in CANONICAL:
                dest, type_name, choices = CANONICAL[opt]
                assert a.dest == dest or opt == "--output", (name, opt, a.dest)
                if type_name:
                    assert getattr(a.type, "__name__", None) == type_name, (name, opt)
                if choices:
                    assert tuple(a.choices) == choices, (name, opt)
    if name in OUTPUT_COMMANDS:
        outs = [a for a in _options(PARSERS[name]) if "--output" in a.option_strings]
        assert len(outs) == 1 and _visible(outs[0])[:2] == ["-o", "--output"], name
        assert "--out" in outs[0].option_strings  # the old spelling still parses


@pytest.mark.parametrize("argv, dest, value", [
    (["infer", "--model", "m.onnx", "--out", "o", "--batchsize", "4"], "batch_size", 4),
    (["infer", "--model", "m.onnx", "--output", "o", "--warmup-count", "3"], "warmup", 3),
    (["predict", "x.png", "--out", "o", "--batch", "8"], "batch_size", 8),
    (["export", "-o", "m.onnx", "--batch", "4"], "batch", 4),
    (["compile", "m.onnx", "--backend", "onnxruntime", "-o", "c.onnx", "--batch", "2"], "batch", 2),
    (["run", "--out", "runs/x", "--batchsize", "8"], "batch_size", 8),
    (["bench", "--out", "b"], "out", "b"),
    (["train", "--out", "t"], "out", "t"),
    (["evaluate", "--instances", "p", "--out", "r"], "output", "r"),
])
def test_old_spellings_still_parse(argv: list[str], dest: str, value: object) -> None:
    args = PARSERS[argv[0]].parse_args(argv[1:])
    assert str(getattr(args, dest)) == str(value)


@pytest.mark.parametrize("argv", [
    ["infer", "--model", "m.onnx", "-o", "o", "--batch-size", "0"],
    ["infer", "--model", "m.onnx", "-o", "o", "--threads", "0"],
    ["infer", "--model", "m.onnx", "-o", "o", "--loop", "-1"],
    ["infer", "--model", "m.onnx", "-o", "o", "--warmup", "-1"],
    ["predict", "x.png", "-o", "o", "--batch-size", "0"],
    ["export", "-o", "m.onnx", "--static-batch", "0"],
    ["bench", "-o", "b", "--threads", "zero"],
])
def test_non_positive_counts_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "expected an integer >=" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["infer", "predict"])
def test_resume_is_on_by_default_and_can_be_turned_off(name: str) -> None:
    (action,) = [a for a in _options(PARSERS[name]) if "--resume" in a.option_strings]
    assert isinstance(action, argparse.BooleanOptionalAction) and action.default is True
    assert "--no-resume" in action.option_strings


def test_unknown_command_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["segment"]) == 2
    assert "unknown command 'segment'" in capsys.readouterr().err
    assert main([]) == 2 and "commands:" in capsys.readouterr().out
    assert main(["--help"]) == 0


def test_top_level_help_imports_no_command_module() -> None:
    code = ("import sys, time; t = time.perf_counter(); from unetpp.cli.main import main; main(['--help']); "
            "print([m for m in sys.modules if m.startswith('unetpp.cli.cmd_') or m in ('numpy', 'torch')])")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert time.perf_counter() - t0 < 5.0  # the 0.5 s target is measured by bench/speed/cli_help_time.py
    assert out.strip().splitlines()[-1] == "[]"
