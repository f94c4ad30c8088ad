"""The inputs of `unetpp infer`: .bin/.npy files gathered from folders (sorted, as ais_bench), screened by size."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unetpp.config import PreprocessConfig
from unetpp.data.preprocess import list_inputs, read_input
from unetpp.errors import InputError, expected_found


def output_stem(path: Path) -> str:
    """ais_bench names outputs after the input name up to its first dot."""
    return path.name.split(".", 1)[0]


def gather_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand each entry (a folder of .bin/.npy, sorted; or one file) into one list; names must be unique."""
    files: list[Path] = []
    for entry in inputs:
        p = Path(entry)
        if p.is_dir():
            files.extend(list_inputs(p))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(expected_found("--input", "a folder of .bin/.npy files or a file", f"nothing at {p}"))
    seen: dict[str, Path] = {}
    for f in files:
        stem = output_stem(f)
        if stem in seen:
            raise InputError(expected_found("input names", "unique names (each gives <name>_0.<fmt>)",
                                            f"{seen[stem]} and {f} both named {stem!r}"))
        seen[stem] = f
    return files


def screen_sizes(files: Sequence[Path], cfg: PreprocessConfig | None = None) -> tuple[list[Path], dict[Path, str]]:
    """check_sizes that goes on: the usable files, and {bad file: message} for the others."""
    good, bad = [], {}
    for f in files:
        problem = size_problem(f, cfg)
        if problem:
            bad[f] = problem
        else:
            good.append(f)
    return good, bad


def size_problem(f: Path, cfg: PreprocessConfig | None = None) -> str | None:
    """The error message for an input of the wrong size or kind, None when it is usable."""
    cfg = cfg or PreprocessConfig()
    if f.suffix.lower() == ".bin":
        size = f.stat().st_size if f.is_file() else None
        if size != cfg.input_nbytes:
            return expected_found(
                f"input file {f}", f"{cfg.input_nbytes} bytes (raw float32 {'x'.join(map(str, cfg.input_shape))})",
                "no such file" if size is None else f"{size} bytes",
                "Re-run `unetpp preprocess` at the model's input size.")
    elif f.suffix.lower() == ".npy":
        try:
            read_input(f, cfg)
        except InputError as exc:
            return str(exc)
    else:
        return expected_found(f"input file {f}", "a .bin or .npy file", f"suffix {f.suffix!r}")
    return None
