"""One self-contained `index.html` per run: the run's totals, then every overlay in a grid with its figures.

Images are linked (relative `<img src>`), not embedded. Figures that are unknown (no ground truth, as for a
`predict` run) are left out of the card. Every text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from unetpp.atomic import write_text_atomic
from unetpp.report.overlay import PRED_COLOR, TRUE_COLOR

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
table.totals{border-collapse:collapse;margin-bottom:1em}
table.totals td,table.totals th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:1em}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:.5em}
figure img{width:100%;height:auto;image-rendering:pixelated}
figcaption{font-size:.85em;word-break:break-all}
.key{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 .3em}
"""


@dataclass(frozen=True)
class GalleryItem:
    """One image of the gallery; `overlay` is the PNG path relative to the HTML file."""

    id: str
    overlay: str
    width: int
    height: int
    n_pred: int
    n_true: int | None = None
    pixel_iou: float | None = None
    ap: float | None = None


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def _figure(item: GalleryItem) -> str:
    e = html.escape
    facts = [f"{item.width}x{item.height}"]
    facts.append(f"nuclei pred {item.n_pred}" + (f" / true {item.n_true}" if item.n_true is not None else ""))
    if item.pixel_iou is not None:
        facts.append(f"pixel IoU {item.pixel_iou:.4f}")
    if item.ap is not None:
        facts.append(f"AP {item.ap:.4f}")
    src = quote(item.overlay.replace("\\", "/"))
    return (f'<figure id="{e(item.id, quote=True)}"><img src="{e(src, quote=True)}" alt="{e(item.id, quote=True)}" '
            f'loading="lazy"><figcaption><b>{e(item.id)}</b><br>{e(" · ".join(facts))}</figcaption></figure>')


def render_gallery(items: Sequence[GalleryItem], totals: Mapping[str, object], title: str = "unetpp") -> str:
    """The HTML text: title, colour key, totals table, one figure per item (in the order given)."""
    e = html.escape
    has_truth = any(i.n_true is not None for i in items)
    key = f'<span class="key" style="background:{_hex(PRED_COLOR)}"></span>predicted nuclei'
    if has_truth:
        key += f'<span class="key" style="background:{_hex(TRUE_COLOR)}"></span>ground truth'
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>" for k, v in totals.items())
    figures = "\n".join(_figure(i) for i in items)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{_CSS}</style></head>\n<body><h1>{e(title)}</h1>\n<p>{key}</p>\n"
            f'<table class="totals">{rows}</table>\n<div class="grid">\n{figures}\n</div>\n</body></html>\n')


def write_gallery(
    path: str | Path,
    items: Sequence[GalleryItem],
    totals: Mapping[str, object],
    title: str = "unetpp",
) -> Path:
    """render_gallery written atomically to `path` (e.g. RUN/index.html); returns the path."""
    write_text_atomic(path, render_gallery(items, totals, title))
    return Path(path)
