"""Model files for runtimes: a checkpoint's ONNX export cached by its SHA-256 (and the output depth).

Where the shipped models and the cache are lives one floor down, in model/sources.py (re-exported here).
"""

from __future__ import annotations

import json
from pathlib import Path

from unetpp.model.metadata import FACTS_VERSION
from unetpp.model.sources import (  # noqa: F401 - re-exported: the names callers have used
    CHECKPOINT_SUFFIXES,
    INSTANCE_MODEL,
    SHIPPED,
    SHIPPED_MODELS,
    WEIGHTS,
    cache_dir,
    is_checkpoint,
    model_source,
    shipped_checkpoint,
)


def onnx_for_checkpoint(checkpoint: Path, depth: int | None = None) -> Path:
    """The checkpoint's ONNX export (guide settings; free height/width for a model with its own scale rule, see
    export_onnx), cached by the checkpoint's SHA-256 and the depth asked for (None: the model's own default depth;
    a pruned graph for 1..3), as `unetpp run` checks. The export's SHA-256 (in its parity record) is checked at each
    use: a changed, truncated or unreadable export is exported again, with one line saying so."""
    from unetpp.atomic import file_sha256

    sha = file_sha256(checkpoint)
    tag = "" if depth is None else f"-d{int(depth)}"
    # onnx/hw/: exports that record their height/width decision (older unetpp versions read onnx/ and would take
    # a free-size export for a model they cannot open)
    out = cache_dir() / "onnx" / "hw" / f"{checkpoint.stem}-{sha[:16]}{tag}.onnx"
    report = Path(str(out) + ".parity.json")  # model.export.parity_path, without importing torch
    why = None
    if out.is_file() and report.is_file():
        try:
            rep = json.loads(report.read_text())
            # older caches lack the metadata, the height/width decision (instance models now export free H/W) or
            # predict's facts (the chosen seed post-processing: metadata.FACTS_VERSION)
            if (rep.get("checkpoint_sha256") == sha and rep.get("metadata") and "dynamic_size" in rep
                    and rep.get("facts_version") == FACTS_VERSION):
                found = file_sha256(out)
                if found == rep.get("onnx_sha256"):
                    return out
                why = f"{out.name} changed since it was written (SHA-256 {found[:12]}, recorded " \
                      f"{str(rep.get('onnx_sha256'))[:12]})"
        except OSError as exc:
            why = f"it cannot be read ({exc.strerror or exc})"
        except ValueError:
            why = f"its record {report.name} is not valid JSON"
    if why:
        import sys

        print(f"unetpp: the cached ONNX export {out} is damaged ({why}): exporting it again", file=sys.stderr)
    from unetpp.model.export import export_onnx  # torch: only when the cache misses

    export_onnx(checkpoint, out, depth=depth)
    return out
