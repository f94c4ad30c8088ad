"""The README's napari screenshot: the fluorescence sample (File > Open Sample > unetpp), Plugins > unetpp >
Segment nuclei, Run, and the viewer as the user sees it (`viewer.screenshot(canvas_only=False)`).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/napari_screenshot.py [-o OUT.png]

Needs a display (Xvfb above) with OpenGL (Mesa's llvmpipe is enough); writes docs/napari_segment_nuclei.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
from qtpy.QtWidgets import QApplication

import napari

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=HERE / "napari_segment_nuclei.png")
    ap.add_argument("--sample", default="stained", choices=["fluorescence", "stained"])
    args = ap.parse_args()

    viewer = napari.Viewer(show=True, title="napari + unetpp")
    viewer.window._qt_window.resize(1500, 900)
    viewer.open_sample("unetpp", args.sample)
    image = viewer.layers[0]
    _dock, widget = viewer.window.add_plugin_dock_widget("unetpp", "Segment nuclei")
    widget.image.value = image
    t0 = time.perf_counter()
    widget.run_button.clicked.emit()  # as a click on Run
    while widget.running:
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        QApplication.processEvents()
    labels = viewer.layers[f"{image.name} nuclei"]
    labels.contour = 2  # outlines over the image, so both show
    viewer.layers.selection.active = labels
    for step in range(40):
        if step == 20:
            viewer.reset_view()  # once the dock has taken its width
        QApplication.processEvents()
        time.sleep(0.02)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), cv2.cvtColor(shot, cv2.COLOR_RGBA2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{args.output}: {shot.shape[1]}x{shot.shape[0]}, {widget.status.value}, "
          f"run {time.perf_counter() - t0:.1f} s")
    viewer.close()


if __name__ == "__main__":
    main()
