"""The one batch driver, with a runtime defined only in this test (tests/toy_runtime.py) registered with one
line: batching across items, padding only for a fixed-batch model, one bad item failing alone, resume, write
errors, and the same runtime working through `unetpp infer`, `unetpp predict` and `unetpp bench` unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from toy_runtime import ToyRuntime, write_toy_model
from unetpp.cli.main import main
from unetpp.core.driver import BatchWork, DriverSettings
from unetpp.core.executors import run_batches
from unetpp.errors import InputError, OutputError
from unetpp.runtimes import get_runtime, register, unregister


@pytest.fixture()
def toy(tmp_path: Path) -> Iterator[Path]:
    register(ToyRuntime)  # the one line that adds a runtime
    # output channel 0 = 2 * channel 0 + 3 * channel 2 - 1
    yield write_toy_model(tmp_path / "toy.npz", w=[[2.0, 0.0, 3.0]], b=[-1.0])
    unregister("toy")


class ListWork(BatchWork):
    """Items are (name, n_units, value): `n_units` constant inputs; the record keeps every output's mean."""

    def __init__(self, out_dir: Path | None = None, bad: str | None = None, fail_write: str | None = None):
        self.out_dir, self.bad, self.fail_write = out_dir, bad, fail_write

    def key(self, item):
        return item[0]

    def outputs(self, item):
        return [] if self.out_dir is None else [self.out_dir / f"{item[0]}.txt"]

    def prepare(self, item):
        name, n, value = item
        if name == self.bad:
            raise InputError(f"input {name}: expected a good item, found a bad one")
        return {"means": [None] * n}, [np.full((n, 3, 4, 4), value, np.float32)]

    def accept(self, state, start, outputs):
        for i, o in enumerate(outputs):
            state["means"][start + i] = float(o.mean())

    def finish(self, item, state):
        if item[0] == self.fail_write:
            raise OutputError(f"cannot write {item[0]}: no space left on the device")
        if self.out_dir is not None:
            (self.out_dir / f"{item[0]}.txt").write_text(json.dumps(state["means"]))
        return {"means": state["means"]}


def _rt(model: Path, **opts):
    """The toy model at 4x4 pixels, for the list items above."""
    small = write_toy_model(model.with_name("toy4.npz"), w=[[2.0, 0.0, 3.0]], b=[-1.0], size=4)
    return get_runtime("toy", small, **opts)


def test_units_of_consecutive_items_share_batches_and_come_back_in_order(toy: Path) -> None:
    items = [("a", 3, 1.0), ("b", 5, 2.0), ("c", 1, 3.0)]
    rt = _rt(toy).activate()
    res = run_batches(items, ListWork(), rt, DriverSettings(batch_size=4, warmup=1))
    assert [r["key"] for r in res.records] == ["a", "b", "c"]
    # 2*v + 3*v - 1 for every unit of item value v
    assert [r["means"] for r in res.records] == [[4.0] * 3, [9.0] * 5, [14.0]]
    assert rt.calls == [4, 4, 4, 1]  # one warm-up call on the first batch, then 4 + 4 + 1 units: no padding
    assert res.batch_sizes == [4, 4, 1] and res.n_padded == 0 and res.n_units == 9 and len(res.compute_ms) == 3


def test_a_fixed_batch_model_is_padded_to_its_own_size_only(toy: Path) -> None:
    rt = _rt(toy, static_batch=2).activate()
    res = run_batches([("a", 5, 1.0)], ListWork(), rt, DriverSettings(batch_size=100000, warmup=0))
    assert rt.calls == [2, 2, 2] and res.n_padded == 1  # never 100000 copies: 5 units = 2 + 2 + (1 + 1 pad)
    assert res.records[0]["means"] == [4.0] * 5


def test_a_bad_item_fails_alone(toy: Path) -> None:
    items = [("a", 2, 1.0), ("bad", 2, 1.0), ("c", 2, 3.0)]
    res = run_batches(items, ListWork(bad="bad"), _rt(toy), DriverSettings(batch_size=3))
    assert [r["key"] for r in res.records] == ["a", "c"]
    assert res.failures == [{"key": "bad", "error": "input bad: expected a good item, found a bad one"}]


def test_resume_skips_items_whose_outputs_are_complete(toy: Path, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("done")
    rt = _rt(toy).activate()
    res = run_batches([("a", 2, 1.0), ("b", 1, 1.0)], ListWork(tmp_path), rt, DriverSettings(batch_size=8, warmup=0))
    assert [r["key"] for r in res.skipped] == ["a"] and [r["key"] for r in res.records] == ["b"]
    assert rt.calls == [1] and (tmp_path / "a.txt").read_text() == "done"
    res = run_batches([("a", 2, 1.0)], ListWork(tmp_path), rt, DriverSettings(resume=False, warmup=0))
    assert res.records and (tmp_path / "a.txt").read_text() == "[4.0, 4.0]"


def test_a_write_error_stops_the_run(toy: Path) -> None:
    with pytest.raises(OutputError, match="no space left"):
        run_batches([("a", 1, 1.0), ("b", 1, 1.0)], ListWork(fail_write="a"), _rt(toy), DriverSettings(batch_size=1))


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"loop": -1}, {"warmup": -2}])
def test_non_positive_counts_are_refused(toy: Path, bad: dict) -> None:
    with pytest.raises(InputError, match="expected an integer >= "):
        run_batches([("a", 1, 1.0)], ListWork(), _rt(toy), DriverSettings(**bad))


def test_the_test_runtime_works_through_infer(toy: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    xs = {f"s{i}": rng.standard_normal((3, 96, 96)).astype("<f4") for i in range(5)}
    for name, x in xs.items():
        x.tofile(inputs / f"{name}.bin")
    rc = main(["infer", "--backend", "toy", "--model", str(toy), "--input", str(inputs), "--output",
               str(tmp_path / "out"), "--output-dirname", "r", "--batchsize", "2", "--no-progress"])
    assert rc == 0
    for name, x in xs.items():
        got = np.fromfile(tmp_path / "out" / "r" / f"{name}_0.bin", "<f4").reshape(96, 96)
        np.testing.assert_allclose(got, 2 * x[0] + 3 * x[2] - 1, rtol=1e-6, atol=1e-6)
    summary = json.loads((tmp_path / "out" / "r_summary.json").read_text())
    assert summary["runtime"]["backend"] == "toy" and summary["n_outputs"] == 5 and summary["n_padded"] == 0


def test_the_test_runtime_works_through_predict(tmp_path: Path) -> None:
    register(ToyRuntime)
    try:
        for bias, expect_nuclei in ((5.0, 1), (-5.0, 0)):  # logit +5 everywhere: one nucleus; -5: none
            model = write_toy_model(tmp_path / f"toy{bias}.npz", w=[[0.0, 0.0, 0.0]], b=[bias])
            img = tmp_path / "img.png"
            cv2.imwrite(str(img), np.full((150, 200, 3), 90, np.uint8))
            out = tmp_path / f"pred{bias}"
            rc = main(["predict", str(img), "-o", str(out), "--backend", "toy", "--model", str(model),
                       "--mode", "tile", "--no-progress"])
            assert rc == 0
            mask = cv2.imread(str(out / "img_mask.png"), cv2.IMREAD_GRAYSCALE)
            assert mask.shape == (150, 200) and (mask == (255 if expect_nuclei else 0)).all()
            summary = json.loads((out / "predict_summary.json").read_text())
            assert summary["nuclei_total"] == expect_nuclei and summary["images"][0]["n_tiles"] > 1
    finally:
        unregister("toy")


def test_the_test_runtime_works_through_bench(toy: Path, tmp_path: Path) -> None:
    from unetpp.bench.spec import parse_specs
    from unetpp.bench.sweep import run_sweep

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        np.zeros((3, 96, 96), "<f4").tofile(inputs / f"s{i}.bin")
    cells = run_sweep(parse_specs([f"toy:model={toy}"]), inputs, tmp_path / "bench", batch_sizes=(2,),
                      min_seconds=0.0, min_iters=2, warmup=0, log=lambda m: None)
    assert len(cells) == 1 and cells[0]["status"] == "ok" and cells[0]["throughput_end_to_end"] > 0


def test_a_stream_of_items_is_batched_by_size_or_by_wait(toy: Path) -> None:
    """A server's use: items arrive one by one; those arriving together share a call, a lone one runs after
    max_wait_ms; on_done reports each item as it completes."""
    import queue
    import threading
    import time

    from unetpp.core.driver import run_pipeline

    inbox: queue.Queue = queue.Queue()

    def stream():
        while (item := inbox.get()) is not None:
            yield item

    done: dict[str, object] = {}
    rt = _rt(toy).activate()
    settings = DriverSettings(batch_size=4, warmup=0, max_wait_ms=50,
                              on_done=lambda item, rec, err: done.__setitem__(item[0], rec or err))
    runner = threading.Thread(target=run_pipeline, args=(stream(), ListWork(bad="x"), rt, settings))
    runner.start()
    for name in ("a", "b", "c", "d"):  # four single-unit items at once: one full batch
        inbox.put((name, 1, 1.0))
    deadline = time.time() + 10
    while len(done) < 4 and time.time() < deadline:
        time.sleep(0.01)
    inbox.put(("e", 1, 2.0))  # alone: runs when the wait expires, without waiting for more
    inbox.put(("x", 1, 2.0))  # a bad one fails alone
    while len(done) < 6 and time.time() < deadline:
        time.sleep(0.01)
    inbox.put(None)
    runner.join(10)
    assert rt.calls[0] == 4 and sum(rt.calls) == 5
    assert done["a"]["means"] == [4.0] and done["e"]["means"] == [9.0] and "bad one" in done["x"]


def test_a_rerun_removes_the_temporary_files_a_killed_run_left(toy: Path, tmp_path: Path) -> None:
    (tmp_path / ".b.txt.k1ll3d00.tmp").write_text("half")  # an atomic write of b.txt cut short by kill -9
    (tmp_path / ".other.txt.k1ll3d00.tmp").write_text("not ours")
    run_batches([("b", 1, 1.0)], ListWork(tmp_path), _rt(toy), DriverSettings(warmup=0))
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".npz") == [".other.txt.k1ll3d00.tmp", "b.txt"]


class SizedWork(ListWork):
    """Items are (name, n_units, value, side): units of side x side pixels (a free-size model's windows)."""

    def prepare(self, item):
        name, n, value, side = item
        return {"means": [None] * n}, [np.full((n, 3, side, side), value, np.float32)]


def test_a_batch_holds_units_of_one_size(toy: Path) -> None:
    """Units of another size run the pending batch first: every runtime call has one shape, and every output
    comes back to its own item and unit."""
    rt = get_runtime("toy", toy)
    shapes: list[tuple[int, ...]] = []
    rt.activate()
    rt.size_step = 4  # this toy model takes any multiple of 4
    infer = rt._infer

    def spy(batch: np.ndarray) -> np.ndarray:
        shapes.append(batch.shape)
        return infer(batch)

    rt._infer = spy
    items = [("a", 3, 1.0, 4), ("b", 2, 2.0, 8), ("c", 3, 3.0, 8), ("d", 1, 4.0, 4)]
    res = run_batches(items, SizedWork(), rt, DriverSettings(batch_size=4, warmup=0))
    assert [r["means"] for r in res.records] == [[4.0] * 3, [9.0] * 2, [14.0] * 3, [19.0]]  # 5 v - 1
    # a: 3 units of 4x4; b + c: 5 units of 8x8 in batches of 4 and 1; d: one 4x4
    assert [s[0] for s in shapes] == [3, 4, 1, 1] and [s[2] for s in shapes] == [4, 8, 8, 4]
