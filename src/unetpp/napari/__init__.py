"""The napari plugin: a "Segment nuclei" dock widget, the `unetpp.segment_nuclei` command, sample images and a
reader for `unetpp predict` outputs (manifest: napari.yaml, found through the `napari.manifest` entry point).

A client of the Python API (`unetpp.load()` -> `Model.predict_many`). Only `widget` imports Qt; the rest needs
numpy (and pandas, which napari brings) so that scripts can call `segment_stack` and `segment_nuclei` without a
viewer. Nothing outside this package imports it: `import unetpp` and the CLI never load napari or Qt.
"""
