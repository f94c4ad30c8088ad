"""BioImage Model Zoo (bioimage.io, format 0.5): export our checkpoints as packages and read such packages.

- `unetpp.zoo.export.export_bioimageio`: a checkpoint -> one `.zip` (ONNX + TorchScript weights, test tensors,
  cover, README), written atomically.
- `unetpp.zoo.package.write_package`: the lower-level writer (any ONNX/TorchScript pair plus metadata).
- `unetpp.model.zoo_package.open_package` / `zoo_runtime_inputs`: validate and describe a package for our runtimes.

Nothing here downloads; `bioimageio.core` (the `zoo` extra) is only needed to run the zoo's own test.
"""
