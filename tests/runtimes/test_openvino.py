"""OpenVINO runtime: agreement with the PyTorch reference, dynamic/static batch, IR compiled by `unetpp compile`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from unetpp.compile import compile_model  # noqa: E402
from unetpp.config import INPUT_NAME, OUTPUT_NAME  # noqa: E402
from unetpp.errors import InputError  # noqa: E402
from unetpp.model.export import synthetic_nuclei  # noqa: E402
from unetpp.model.network import build_model  # noqa: E402
from unetpp.runtimes import get_runtime  # noqa: E402

# fp32 on both sides; OpenVINO fuses BN and reorders sums. Logits of this model are O(1).
OV_ATOL = 1e-4


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, np.ndarray]:
    torch.manual_seed(0)
    model = build_model().eval()
    path = tmp_path_factory.mktemp("ov") / "m.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 96, 96), str(path), dynamo=False, opset_version=13,
                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return model, path, synthetic_nuclei(3, seed=1)


def _torch(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_onnx_agrees_with_pytorch_at_two_batch_sizes(ref) -> None:
    model, path, x = ref
    expected = _torch(model, x)
    with get_runtime("openvino", path, threads=2, hint="latency") as rt:
        assert rt.static_batch is None
        out3 = rt.infer(x)
        out1 = rt.infer(x[:1])  # a new batch size: reshaped and compiled again
        assert rt.last_compute_ms is not None and rt.last_compute_ms > 0
        assert rt.version() != "not installed"
    assert out3.shape == (3, 1, 96, 96) and out3.dtype == np.float32
    np.testing.assert_allclose(out3, expected, atol=OV_ATOL, rtol=0)
    np.testing.assert_allclose(out1, expected[:1], atol=OV_ATOL, rtol=0)


def test_ir_from_compile_loads_and_agrees(ref, tmp_path: Path) -> None:
    model, path, x = ref
    report = compile_model(path, "openvino", tmp_path / "m.xml")
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file()
    assert report["dynamic_batch"] and (tmp_path / "m.compile.json").is_file()
    with get_runtime("openvino", tmp_path / "m.xml") as rt:
        np.testing.assert_allclose(rt.infer(x), _torch(model, x), atol=OV_ATOL, rtol=0)


def test_static_ir_refuses_other_batch_sizes(ref, tmp_path: Path) -> None:
    model, path, x = ref
    compile_model(path, "openvino", tmp_path / "b2.xml", batch=2)
    with get_runtime("openvino", tmp_path / "b2.xml") as rt:
        assert rt.static_batch == 2
        np.testing.assert_allclose(rt.infer(x[:2]), _torch(model, x[:2]), atol=OV_ATOL, rtol=0)
        with pytest.raises(InputError, match="expected 2, found 3"):
            rt.infer(x)


def test_bad_options_are_named() -> None:
    with pytest.raises(InputError, match="hint"):
        get_runtime("openvino", "m.onnx", hint="fastest")
    with pytest.raises(InputError, match="nthreads"):
        get_runtime("openvino", "m.onnx", nthreads=2)


def test_async_requests_through_the_driver_equal_synchronous_calls(ref) -> None:
    """hint=throughput: the driver keeps the plugin's optimal number of requests in flight; outputs, their order
    and their pairing with inputs equal one-at-a-time calls."""
    from unetpp.core.driver import BatchWork, DriverSettings
    from unetpp.core.executors import run_batches

    path = ref[1]
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((3, 96, 96)).astype(np.float32) * np.float32(0.01) for _ in range(11)]

    class Work(BatchWork):
        def prepare(self, item):
            return {}, [xs[item][None]]

        def accept(self, state, start, outputs):
            state["y"] = outputs[0]

        def finish(self, item, state):
            return {"y": state["y"]}

    with get_runtime("openvino", path, hint="throughput", threads=2) as rt:
        res = run_batches(list(range(11)), Work(), rt, DriverSettings(batch_size=2, warmup=1))
        assert rt.max_in_flight >= 2
        ref = [rt.infer(x[None])[0] for x in xs]
    assert [r["key"] for r in res.records] == [str(i) for i in range(11)]
    for r, y in zip(res.records, ref):
        np.testing.assert_allclose(r["y"], y, atol=1e-5)
    assert res.busy_s > 0 and len(res.compute_ms) == 6


def test_more_requests_in_flight_than_prefetched_batches_do_not_deadlock(ref) -> None:
    """requests=4 with a prefetch gate of 2 batches: the driver completes requests when no input is ready."""
    from unetpp.core.driver import BatchWork, DriverSettings
    from unetpp.core.executors import run_batches

    x = np.zeros((1, 3, 96, 96), np.float32)

    class Work(BatchWork):
        def prepare(self, item):
            return {}, [x]

        def accept(self, state, start, outputs):
            state["y"] = outputs

        def finish(self, item, state):
            return {"n": int(state["y"].shape[0])}

    with get_runtime("openvino", ref[1], requests=4) as rt:
        res = run_batches(list(range(9)), Work(), rt, DriverSettings(batch_size=1, warmup=1, prefetch_batches=2))
    assert [r["n"] for r in res.records] == [1] * 9 and rt.max_in_flight == 4
