"""`unetpp serve` as a client sees it: a real server process on 127.0.0.1 (conftest.py), every endpoint, every
error class, the token, the limits, concurrency (batched responses equal one-at-a-time ones and `unetpp predict`)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
from serve_helpers import SRC, Server, start_server, stop_server

from unetpp.model.cards import shipped_cards


def _segment(client: httpx.Client, path: Path, include: str = "labels", **fields: str) -> httpx.Response:
    return client.post(f"/v1/segment?include={include}", files={"file": (path.name, path.read_bytes())},
                       data=fields)


def _without_timings(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "timings"}


def _assert_refused(r: httpx.Response, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) - {"failures"} == {"error", "expected", "found"}, body
    text = json.dumps(body).lower()
    for w in words:
        assert w.lower() in text, (w, body)


def test_health_needs_no_token_and_everything_else_does(server: Server, instance_size: int) -> None:
    assert httpx.get(server.url + "/v1/health").json() == {"status": "ok", "ready": True}
    for method, path in (("GET", "/v1/ready"), ("GET", "/v1/model"), ("GET", "/metrics"),
                         ("POST", "/v1/segment"), ("POST", "/v1/segment.zip")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {server.token}"}):
            r = httpx.request(method, server.url + path, headers=headers)
            _assert_refused(r, 401, "token")
            assert r.headers["www-authenticate"] == "Bearer"
    with server.client() as c:
        assert c.get("/v1/ready").json()["ready"] is True
        card = c.get("/v1/model").json()
    assert card["name"] == "nested_unet_instance" and card["shipped_name"] == "instance" and len(card["sha256"]) == 64
    assert "134 val ids" in card["accuracy"]["split"] and "watershed" in card["task"]
    own = shipped_cards()["instance"]  # the model's own figures, from its card, not the guide model's
    assert card["accuracy"]["summary"] == own["summary"] and "guide_iou_96px" not in card["accuracy"]
    assert card["accuracy"]["full_resolution_tile_auto"] == own["figures"]["full_resolution_tile_auto"]
    assert card["outputs"] == ["foreground", "border"] and card["preprocessing"]["size"] == instance_size
    assert httpx.get(server.url + "/").text.startswith("<!doctype html>")  # the page itself holds no data


def test_segment_returns_nuclei_table_timings_identity_and_pngs(server: Server, images: list[Path]) -> None:
    with server.client() as c:
        r = _segment(c, images[0], include="labels,mask,overlay")
    assert r.status_code == 200, r.text
    body = r.json()
    labels = cv2.imdecode(np.frombuffer(base64.b64decode(body["png"]["labels"]), np.uint8), cv2.IMREAD_UNCHANGED)
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(body["png"]["mask"]), np.uint8), cv2.IMREAD_UNCHANGED)
    overlay = cv2.imdecode(np.frombuffer(base64.b64decode(body["png"]["overlay"]), np.uint8), cv2.IMREAD_UNCHANGED)
    h, w = body["image"]["height"], body["image"]["width"]
    assert labels.dtype == np.uint16 and labels.shape == mask.shape == (h, w) and overlay.shape == (h, w, 3)
    assert body["nuclei"] == int(labels.max()) == len(body["table"]["rows"]) > 0
    assert body["table"]["columns"][:2] == ["label", "area_px"]
    assert body["image"]["name"] == "nuclei_0" and body["options"]["mode"] == "tile"
    assert set(body["timings"]) == {"queue_ms", "compute_ms", "total_ms"}
    from unetpp.compile.fast import openvino_available

    assert body["model"]["backend"] == ("openvino" if openvino_available() else "onnxruntime")  # the default
    assert len(body["model"]["sha256"]) == 64
    saved = sorted(p.name for p in server.save_dir.iterdir())  # --save DIR: predict's files, unique stems
    assert any(n.endswith("-nuclei_0_labels.png") for n in saved) and any(n.endswith("_nuclei.csv") for n in saved)


def test_bad_requests_get_4xx_json_and_the_server_lives_on(server: Server, images: list[Path], tmp_path: Path) -> None:
    png = images[0].read_bytes()
    ok, jpg = cv2.imencode(".jpg", cv2.imread(str(images[0])))
    cases = [
        ({"file": ("notes.txt", b"hello, not an image")}, {}, 415, ["not an image"]),
        ({"file": ("cut.png", png[: len(png) // 2])}, {}, 422, ["truncated or corrupt"]),
        ({"file": ("cut.jpg", jpg.tobytes()[:-200])}, {}, 422, ["complete JPEG"]),
        ({"file": ("empty.png", b"")}, {}, 400, ["0 bytes"]),
        ({"image": ("a.png", png)}, {}, 400, ["`file`"]),
        ({"file": ("a.png", png)}, {"colour": "red"}, 400, ["unknown form field", "colour"]),
        ({"file": ("a.png", png)}, {"threshold": "abc"}, 400, ["threshold", "'abc'"]),
        ({"file": ("a.png", png)}, {"threshold": "2"}, 400, ["threshold", "(0, 1)"]),
        ({"file": ("a.png", png)}, {"min_area": "-1"}, 400, ["min_area"]),
        ({"file": ("a.png", png)}, {"mode": "fast"}, 400, ["mode", "resize or tile"]),
        ({"file": ("a.png", png)}, {"scale": "huge"}, 400, ["scale"]),
        ({"file": ("a.png", png)}, {"overlap": "1.5"}, 400, ["overlap"]),
    ]
    with server.client() as c:
        for files, data, status, words in cases:
            _assert_refused(c.post("/v1/segment", files=files, data=data), status, *words)
        _assert_refused(c.post("/v1/segment", data={"file": "text"}), 400)  # a text value, no upload
        _assert_refused(c.post("/v1/segment", json={"file": "x"}), 400, "multipart/form-data")
        _assert_refused(c.post("/v1/segment?include=probability", files={"file": ("a.png", png)}), 400, "include")
        _assert_refused(c.post("/v1/segment?debug=1", files={"file": ("a.png", png)}), 400, "debug")
        _assert_refused(c.post("/v1/segment", files=[("file", ("a.png", png)), ("file", ("b.png", png))]), 400,
                        "segment.zip")
        _assert_refused(c.post("/v1/segment.zip", files=[("file", ("b.txt", b"x")), ("file", ("c.txt", b"y"))]),
                        415, "not an image")  # nothing readable: the first refusal (with the list, see below)
        ok, stack = cv2.imencodemulti(".tif", [np.full((40, 50), v, np.uint8) for v in (10, 200)])
        _assert_refused(c.post("/v1/segment", files={"file": ("stack.tif", stack.tobytes())}), 422, "2 pages",
                        "single-page")
        _assert_refused(c.get("/v1/nothing"), 404)
        _assert_refused(c.get("/v1/segment"), 405)
        _assert_refused(c.get("/static/../../etc/passwd"), 404)
        assert c.get("/v1/ready").status_code == 200
    assert server.proc.poll() is None


def test_upload_and_pixel_limits_give_413(server: Server) -> None:
    big = np.random.default_rng(0).integers(0, 255, 1_200_000, dtype=np.uint8).tobytes()  # over --max-upload-mb 1
    ok, wide = cv2.imencode(".png", np.zeros((1000, 2100), np.uint8))  # 2.1 Mpx > --max-pixels 2000000, ~3 KB
    with server.client() as c:
        _assert_refused(c.post("/v1/segment", files={"file": ("big.png", big)}), 413, "bytes")
        _assert_refused(c.post("/v1/segment", files={"file": ("wide.png", wide.tobytes())}), 413, "2100x1000")
        assert c.get("/v1/ready").status_code == 200


def test_zip_holds_each_images_files_and_the_counts(server: Server, images: list[Path]) -> None:
    with server.client() as c:
        one = [_segment(c, p).json() for p in images[:2]]
        r = c.post("/v1/segment.zip", files=[("file", ("../x/" + p.name, p.read_bytes())) for p in images[:2]])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(zf.namelist())
    for p, body in zip(images[:2], one):
        stem = p.stem
        assert {f"{stem}_labels.png", f"{stem}_mask.png", f"{stem}_overlay.png", f"{stem}_nuclei.csv"} <= names
        assert zf.read(f"{stem}_labels.png") == base64.b64decode(body["png"]["labels"])
        assert len(zf.read(f"{stem}_nuclei.csv").decode().splitlines()) == body["nuclei"] + 1
    counts = zf.read("counts.csv").decode().splitlines()
    assert counts[0] == "image,height,width,mode,nuclei,scale"
    assert [int(line.split(",")[4]) for line in counts[1:]] == [b["nuclei"] for b in one]


def test_zip_with_unreadable_files_returns_the_good_results_and_the_failures(server: Server,
                                                                           images: list[Path]) -> None:
    png = images[0].read_bytes()
    files = [("file", ("good_a.png", png)), ("file", ("notes.txt", b"hello, not an image")),
             ("file", ("cut.png", png[: len(png) // 2])), ("file", ("good_b.png", images[1].read_bytes()))]
    with server.client() as c:
        r = c.post("/v1/segment.zip", files=files)
        alone = [c.post("/v1/segment?include=labels", files={"file": f[1]}).json() for f in (files[0], files[3])]
        none = c.post("/v1/segment.zip", files=files[1:3])
    assert r.status_code == 200 and r.headers["x-unetpp-failed"] == "2", r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.read("good_a_labels.png") == base64.b64decode(alone[0]["png"]["labels"])
    assert zf.read("good_b_labels.png") == base64.b64decode(alone[1]["png"]["labels"])
    assert not [n for n in zf.namelist() if n.startswith(("notes", "cut"))]
    counts = zf.read("counts.csv").decode().splitlines()
    assert [line.split(",")[0] for line in counts[1:]] == ["good_a", "good_b"]
    failures = zf.read("failures.csv").decode().splitlines()
    assert failures[0] == "name,status,error,expected,found"
    assert [f.split(",")[:2] for f in failures[1:]] == [["notes", "415"], ["cut", "422"]]
    assert none.status_code == 415 and [f["name"] for f in none.json()["failures"]] == ["notes", "cut"]


def test_requests_share_runtime_calls(server: Server, images: list[Path]) -> None:
    """Direct: resize-mode requests are one network input each, so a runtime call holding two or more inputs held
    two or more requests. The batch-size histogram before and after concurrent requests says whether any did."""
    def calls() -> tuple[int, int]:
        with server.client() as c:
            text = c.get("/metrics").text
        one = int(text.split('unetpp_batch_size_bucket{le="1"} ')[1].split()[0])
        return one, int(text.split("unetpp_batch_size_count ")[1].split()[0])

    shared = []
    for _ in range(3):  # a round on a busy machine may see the requests arrive one by one
        one0, total0 = calls()
        with server.client() as c, ThreadPoolExecutor(len(images)) as pool:
            bodies = list(pool.map(lambda p: _segment(c, p, mode="resize").json(), images))
        one1, total1 = calls()
        assert all(b["n_tiles"] == 1 for b in bodies)
        assert total1 - total0 <= len(images)
        shared.append((total1 - total0) - (one1 - one0))  # calls that held two or more requests
        if shared[-1] > 0:
            break
    assert shared[-1] > 0, f"no runtime call held two requests in {len(shared)} rounds of {len(images)}"


def test_concurrent_requests_equal_sequential_ones_and_unetpp_predict(server: Server, images: list[Path],
                                                                       tmp_path: Path) -> None:
    with server.client() as c:
        sequential = [_segment(c, p).json() for p in images]
    with server.client() as c, ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda p: _segment(c, p).json(), images))
    assert [_without_timings(b) for b in concurrent] == [_without_timings(b) for b in sequential]
    out = tmp_path / "predict"
    env = {k: v for k, v in os.environ.items() if k != "UNETPP_DEFAULT_RUNTIME"}  # the server's default runtime
    env["PYTHONPATH"] = str(SRC)
    subprocess.run([sys.executable, "-m", "unetpp", "predict", *map(str, images), "-o", str(out), "--mode", "tile",
                    "--threads", "2", "--no-progress"], check=True, env=env, capture_output=True)
    for p, body in zip(images, sequential):
        assert (out / f"{p.stem}_labels.png").read_bytes() == base64.b64decode(body["png"]["labels"]), p.name
        assert len((out / f"{p.stem}_nuclei.csv").read_text().splitlines()) == body["nuclei"] + 1


def test_metrics_are_prometheus_text(server: Server) -> None:
    with server.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ("unetpp_requests_total{", "unetpp_errors_total{", "unetpp_request_seconds_bucket{",
                 "unetpp_batch_size_bucket{", "unetpp_queue_depth ", "# TYPE unetpp_request_seconds histogram"):
        assert name in r.text, name


def test_timeout_gives_504_full_queue_429_and_nothing_is_written(images: list[Path], tmp_path: Path) -> None:
    """No token (open), --timeout-s 1, --max-queue 2, no --save. A large image keeps the queue busy; meanwhile a
    ZIP of three images is refused on its own (3 > 2), a ZIP of two because of the image already queued (1 + 2 >
    2), and a single image is admitted (1 + 1) but times out waiting behind it (504). Requests write nothing in
    the working folder or TMPDIR (onnxruntime itself leaves a `.ses` file in TMPDIR when imported, at start-up)."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    big = tmp_path / "big.png"
    tile = cv2.imread(str(images[0]))
    cv2.imwrite(str(big), np.tile(tile, (3, 3, 1))[:600, :600])  # at scale 1: ~70 windows, several seconds
    srv = start_server(["--timeout-s", "1", "--max-queue", "2", "--threads", "1"], tmp_path / "serve.log",
                       cwd=cwd, env={"TMPDIR": str(tmp)})
    before = sorted(cwd.iterdir()) + sorted(tmp.iterdir())
    try:
        assert httpx.get(srv.url + "/v1/model").status_code == 200  # no --token: open
        r = httpx.post(srv.url + "/v1/segment", files={"file": ("a.txt", b"x" * 5000)}, timeout=60)
        _assert_refused(r, 415)
        files = [("file", (f"{k}.png", images[k].read_bytes())) for k in range(3)]
        _assert_refused(httpx.post(srv.url + "/v1/segment.zip", files=files, timeout=60), 429, "max-queue 2",
                        "0 image(s) waiting")
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(httpx.post, srv.url + "/v1/segment", files={"file": ("big.png", big.read_bytes())},
                               data={"scale": "1"}, timeout=60)
            deadline = time.monotonic() + 30
            while httpx.get(srv.url + "/v1/ready").json()["queue_depth"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            r = httpx.post(srv.url + "/v1/segment.zip", files=files[:2], timeout=60)
            _assert_refused(r, 429, "max-queue 2", "1 image(s) waiting or running")
            assert r.headers["retry-after"] == "1"
            r = httpx.post(srv.url + "/v1/segment", files={"file": ("a.png", images[0].read_bytes())}, timeout=60)
            _assert_refused(r, 504, "timed out")  # admitted (1 + 1 <= 2), still queued behind the large image
            _assert_refused(busy.result(), 504, "timed out")
        assert httpx.get(srv.url + "/v1/health").status_code == 200 and srv.proc.poll() is None
    finally:
        stop_server(srv)
    assert sorted(cwd.iterdir()) + sorted(tmp.iterdir()) == before
    assert [p.name for p in before] in ([], [".ses"])
