"""The CLI's one vocabulary: option helpers every command uses, hidden old spellings, defaults in help.

Kept free of heavy imports: `unetpp --help` and each command's parser load this module.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from typing import Any, NoReturn

# Old spellings still accepted (scripts, the Makefile, ais_bench habits) but not shown in --help.
HIDDEN = {"--out", "--batchsize", "--batch", "--warmup-count"}


def count(low: int = 1) -> Callable[[str], int]:
    """An argparse type: an integer >= low (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, found {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, found {value}")
        return value

    parse.__name__ = "positive integer" if low == 1 else f"integer >= {low}"
    return parse


def hide_aliases(action: argparse.Action) -> argparse.Action:
    """Mark the old spellings among an action's option strings as hidden in --help."""
    action.hidden_aliases = tuple(s for s in action.option_strings if s in HIDDEN)  # type: ignore[attr-defined]
    return action


def add_output(p: argparse.ArgumentParser | Any, help: str, required: bool = True, dest: str = "output",
               short: bool = True, **kw: Any) -> argparse.Action:
    """-o/--output (hidden alias --out): where results go."""
    names = (["-o"] if short else []) + ["--output", "--out"]
    return hide_aliases(p.add_argument(*names, dest=dest, required=required, help=help, **kw))


def add_batch_size(p: argparse.ArgumentParser | Any, default: int, help: str, old: str | None = None) -> None:
    """--batch-size: images (or tiles) per runtime call; `old` is an earlier spelling kept hidden."""
    names = ["--batch-size"] + ([old] if old else [])
    hide_aliases(p.add_argument(*names, dest="batch_size", type=count(1), default=default, metavar="N", help=help))


def add_static_batch(p: argparse.ArgumentParser | Any) -> None:
    """--static-batch: fix the model's batch axis (hidden alias --batch)."""
    hide_aliases(p.add_argument("--static-batch", "--batch", dest="batch", type=count(1), default=None,
                                metavar="N", help="fix the model's batch axis to N (default: dynamic batch)"))


def add_warmup(p: argparse.ArgumentParser | Any, default: int, help: str, old: str | None = None) -> None:
    names = ["--warmup"] + ([old] if old else [])
    hide_aliases(p.add_argument(*names, dest="warmup", type=count(0), default=default, metavar="N", help=help))


def add_threads(p: argparse.ArgumentParser | Any, help: str = "intra-op threads of the runtime (default: all "
                "cores)") -> None:
    p.add_argument("--threads", type=count(1), default=None, metavar="N", help=help)


def add_device(p: argparse.ArgumentParser | Any, default: str | None = None,
               help: str = "cpu or cuda (default: the backend's own, cpu)") -> None:
    p.add_argument("--device", choices=("cpu", "cuda"), default=default, help=help)


def add_overwrite(p: argparse.ArgumentParser | Any) -> None:
    """--overwrite: replace a run folder written with other settings (default: resume or refuse)."""
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output folder written with other settings (the old one is deleted only after "
                   "this run ends; default: resume with the same settings, refuse different ones)")


class Formatter(argparse.HelpFormatter):
    """Appends "(default: X)" where a help text does not say its default; hides old spellings."""

    def __init__(self, prog: str, **kw: Any) -> None:
        kw.setdefault("max_help_position", 32)
        kw.setdefault("width", 110)
        super().__init__(prog, **kw)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(action, argparse.BooleanOptionalAction):
            return text
        value = action.default
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        return f"{text} (default: {value})" if text else f"(default: {value})"

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, "hidden_aliases", ())
        if hidden:
            action = copy.copy(action)
            action.option_strings = [s for s in action.option_strings if s not in hidden]
        return super()._format_action_invocation(action)


class Parser(argparse.ArgumentParser):
    """Every command's parser: the Formatter by default."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kw)

    def error(self, message: str) -> NoReturn:
        """A usage error in one line (what was wrong, where the options are listed), exit 2: no usage block."""
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")
