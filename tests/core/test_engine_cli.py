"""`--engine` misuse and a missing Ray: clear messages, no traceback, nothing written (no Ray needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from unetpp.cli.main import main
from unetpp.core.work import FAULT_ENV, FaultSpec
from unetpp.errors import InputError


def _err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_engine_ray_without_ray_says_how_to_install(onnx_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)  # what `import ray` sees when Ray is not installed
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.bin").write_bytes(b"\0" * 4 * 3 * 96 * 96)
    err = _err(["infer", "--engine", "ray", "--model", str(onnx_model), "--input", str(tmp_path / "in"),
                "--output", str(tmp_path / "o")], capsys)
    assert "pip install 'unetpp[ray]'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_ray_flags_need_engine_ray(onnx_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(["infer", "--model", str(onnx_model), "--output", str(tmp_path / "o"), "--num-workers", "2"], capsys)
    assert "--num-workers" in err and "--engine ray" in err
    assert not (tmp_path / "o").exists()


def test_engine_ray_needs_inputs(onnx_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(["infer", "--engine", "ray", "--model", str(onnx_model), "--output", str(tmp_path / "o")], capsys)
    assert "--input" in err and "--engine local" in err


def test_fault_spec_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_ENV, raising=False)
    assert FaultSpec.from_env() is None
    monkeypatch.setenv(FAULT_ENV, "5:/tmp/m.json")
    assert FaultSpec.from_env() == FaultSpec(5, "/tmp/m.json")
    for bad in ("0:/tmp/m", "x:/tmp/m", "5", "5:"):
        monkeypatch.setenv(FAULT_ENV, bad)
        with pytest.raises(InputError, match=FAULT_ENV):
            FaultSpec.from_env()


def test_engine_ray_without_a_cluster_at_the_address(onnx_model: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unetpp[ray]'")
    if ray.is_initialized() or Path("/tmp/ray/ray_current_cluster").exists():
        pytest.skip("a Ray cluster is up on this machine: --address auto would find it")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.bin").write_bytes(b"\0" * 4 * 3 * 96 * 96)
    err = _err(["infer", "--engine", "ray", "--address", "auto", "--model", str(onnx_model),
                "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")], capsys)
    assert "--address auto" in err and "ray start --head" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
