"""`unetpp infer`'s work for the driver: one .bin/.npy input = one unit; its logits are written as
`<name>_0.bin|.npy` (ais_bench's layout), atomically."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unetpp.atomic import write_bytes_atomic
from unetpp.config import PreprocessConfig
from unetpp.core.driver import BatchWork
from unetpp.data.preprocess import read_input
from unetpp.infer.inputs import output_stem

OUTFMTS = ("BIN", "NPY")


def output_path(out_dir: Path, infile: Path, outfmt: str) -> Path:
    return out_dir / f"{output_stem(infile)}_0.{outfmt.lower()}"


def encode_output(arr: np.ndarray, outfmt: str) -> bytes:
    if outfmt == "BIN":
        return arr.astype("<f4").tobytes()
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float32))
    return buf.getvalue()


def output_complete(path: Path, outfmt: str, shape: tuple[int, ...]) -> bool:
    """The output exists and holds one float32 map of `shape` (C, S, S)."""
    if not path.is_file():
        return False
    if outfmt == "BIN":
        return path.stat().st_size == 4 * int(np.prod(shape))
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return False
    return arr.dtype == np.float32 and tuple(arr.shape) == tuple(shape)


@dataclass
class InferWork(BatchWork):
    """Read a tensor file, write its logits (`out_dir` None: keep them in the record, write nothing).
    `out_shape` is one output (C_out, S, S)."""

    out_dir: Path | None
    outfmt: str
    cfg: PreprocessConfig
    out_shape: tuple[int, int, int]

    def key(self, item: Path) -> str:
        return str(item)

    def outputs(self, item: Path) -> list[Path]:
        return [] if self.out_dir is None else [output_path(self.out_dir, item, self.outfmt)]

    def output_complete(self, path: Path) -> bool:
        return output_complete(path, self.outfmt, self.out_shape)

    def done_record(self, item: Path) -> dict[str, Any]:
        return {"key": str(item), "outfiles": [str(p) for p in self.outputs(item)], "skipped": True}

    def prepare(self, item: Path) -> tuple[dict[str, Any], Iterable[np.ndarray]]:
        return {}, [read_input(item, self.cfg)[None]]

    def accept(self, state: dict[str, Any], start: int, outputs: np.ndarray) -> None:
        state["y"] = outputs[0]

    def finish(self, item: Path, state: dict[str, Any]) -> dict[str, Any]:
        if self.out_dir is None:
            return {"key": str(item), "logits": state["y"].reshape(self.out_shape)}
        path = output_path(self.out_dir, item, self.outfmt)
        write_bytes_atomic(path, encode_output(state["y"].reshape(self.out_shape), self.outfmt))
        self.wrote(path)
        return {"key": str(item), "outfiles": [str(path)]}
