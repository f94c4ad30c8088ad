"""One nucleus table, one counts table: the same image gives the same CSV bytes from `unetpp predict` (its run
folder), the Python API (`info["table"].to_csv()`) and serve's ZIP, and the napari export's predict columns."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

import unetpp
from unetpp.predict.table import COUNTS_COLUMNS, NucleusTable, counts_csv


def test_nucleus_table_reads_as_dicts_and_writes_predicts_csv() -> None:
    labels = np.zeros((6, 8), np.int32)
    labels[1:3, 1:4] = 1  # 6 px, centroid (1.5, 2), box (1, 1)-(3, 4)
    labels[4, 6] = 2
    table = NucleusTable.from_labels(labels)
    assert len(table) == 2 and table[0]["area_px"] == 6 and table[1]["centroid_x"] == 6.0
    assert [r["label"] for r in table] == [1, 2] and table[:1] == [table[0]]
    assert table.to_csv() == ("label,area_px,centroid_y,centroid_x,bbox_y0,bbox_x0,bbox_y1,bbox_x1\n"
                              "1,6,1.5,2.0,1,1,3,4\n2,1,4.0,6.0,4,6,5,7\n")
    rec = {"stem": "a", "height": 6, "width": 8, "mode": "tile", "nuclei": 2, "scale": 0.5}
    assert counts_csv([rec]) == ",".join(COUNTS_COLUMNS) + "\na,6,8,tile,2,0.5\n"
    assert counts_csv([rec], names=["b"]).splitlines()[1].startswith("b,")


def test_cli_api_and_serve_write_the_same_csv_bytes(server, images: list[Path], tmp_path: Path,
                                                    monkeypatch) -> None:
    import cv2

    monkeypatch.delenv("UNETPP_DEFAULT_RUNTIME", raising=False)  # the default runtime, as the server runs it

    image = images[0]
    with server.client() as c:
        r = c.post("/v1/segment.zip", files=[("file", (image.name, image.read_bytes()))])
    assert r.status_code == 200, r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    with unetpp.load(threads=2) as model:  # the model and runtime serve opens by default
        _, info = model.predict(cv2.imread(str(image))[:, :, ::-1])
        assert model.identity["protocol"]["depth"] == 3 and info["protocol"]["depth"] == 3
        model.predict_folder([image], tmp_path / "out", progress=False)
    stem = image.stem
    cli = (tmp_path / "out" / f"{stem}_nuclei.csv").read_bytes()
    assert len(cli.splitlines()) > 2  # a real table
    assert info["table"].to_csv().encode() == cli
    assert zf.read(f"{stem}_nuclei.csv") == cli
    assert zf.read("counts.csv") == (tmp_path / "out" / "counts.csv").read_bytes()


def test_serve_echoes_the_protocol_it_applied(server, images: list[Path]) -> None:
    """/v1/model shows the model's own protocol (depth included); a response the values applied to it."""
    from unetpp.model.checkpoint import load_checkpoint, shipped_checkpoint

    own = load_checkpoint(shipped_checkpoint("instance")).meta
    with server.client() as c:
        card = c.get("/v1/model").json()
        body = c.post("/v1/segment", files={"file": (images[0].name, images[0].read_bytes())},
                      data={"threshold": "0.7", "min_area": "50"}).json()
        plain = c.post("/v1/segment", files={"file": (images[0].name, images[0].read_bytes())}).json()
    assert card["protocol"]["depth"] == own["default_depth"] == 3
    assert card["protocol"]["postprocess"]["t_fg"] == own["seed_params"]["t_fg"]
    assert f"depth {own['default_depth']}" in card["protocol_line"]
    applied = body["protocol"]["postprocess"]
    assert (applied["t_fg"], applied["min_area"], applied["min_area_in"]) == (0.7, 50, "image pixels")
    assert body["options"]["threshold"] == 0.7 and plain["options"]["threshold"] is None
    assert plain["protocol"]["postprocess"]["t_fg"] == own["seed_params"]["t_fg"]
    areas = [row[1] for row in body["table"]["rows"]]
    assert areas and min(areas) >= 50
