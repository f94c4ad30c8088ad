"""The CLI dispatcher: every command is listed, and a command loads only its own module (start-up cost)."""

from __future__ import annotations

import subprocess
import sys

from unetpp.cli.main import COMMANDS, build_parser


def test_every_command_has_a_parser() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


def test_infer_does_not_import_torch() -> None:
    """`unetpp infer` on an ONNX model must not pay torch's ~2 s import: only the infer command is loaded."""
    code = ("import sys; from unetpp.cli.main import build_parser; build_parser('infer'); "
            "import unetpp.infer.run, unetpp.runtimes.ort; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_infer_on_onnx_does_not_import_torch(tmp_path) -> None:
    """Resolving an .onnx model (the step before the runtime opens) must not load torch either."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07")
    code = ("import sys; from unetpp.runtimes import resolve_model; "
            f"print(resolve_model({str(model)!r}, None)[0], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["onnxruntime", "False"]
