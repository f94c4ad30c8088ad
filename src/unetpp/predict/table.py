"""The two tables predict writes, spelled out once: one row per nucleus (`<stem>_nuclei.csv`) and one row per
image (`counts.csv`). `unetpp predict`, the Python API, serve and napari all write them through these types, so
the same image gives the same CSV bytes from each."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from unetpp.predict.instances import CSV_HEADER, nucleus_table

COUNTS_COLUMNS = ("image", "height", "width", "mode", "nuclei", "scale")


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Comma-separated, '\\n' line ends, values as str() writes them (no quoting: names and numbers only)."""
    return "\n".join([",".join(columns)] + [",".join("" if v is None else str(v) for v in r) for r in rows]) + "\n"


class NucleusTable(Sequence[dict[str, Any]]):
    """One row per nucleus: label, area_px, centroid_y, centroid_x, bbox_y0, bbox_x0, bbox_y1, bbox_x1 (pixels of
    the image; y1/x1 exclusive). Reads as a sequence of dicts (`table[0]["area_px"]`); `rows` holds the values,
    `to_csv()` the text of `<stem>_nuclei.csv`."""

    columns = tuple(CSV_HEADER)

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows: list[list[Any]] = [list(r) for r in rows]

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> NucleusTable:
        return cls(nucleus_table(labels))

    def to_csv(self) -> str:
        return csv_text(self.columns, self.rows)

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [dict(zip(self.columns, r)) for r in self.rows[i]]
        return dict(zip(self.columns, self.rows[i]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(zip(self.columns, r)) for r in self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NucleusTable) and self.rows == other.rows

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NucleusTable({len(self.rows)} nuclei)"


def counts_csv(records: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> str:
    """`counts.csv`: one row per image (its name: the stem its outputs are written under, or `names`), its size,
    the mode that ran, its nucleus count and the scale it ran at (empty in resize mode's records without one)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COUNTS_COLUMNS)
    for k, r in enumerate(records):
        w.writerow([names[k] if names else r["stem"], r["height"], r["width"], r["mode"], r["nuclei"],
                    r.get("scale")])
    return buf.getvalue()
