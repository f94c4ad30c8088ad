"""napari and Qt stay in the plugin's room: `import unetpp`, the API and the CLI never load them, nor do the
plugin's array-only modules (planes, reader, samples) that scripts may use."""

from __future__ import annotations

import subprocess
import sys

GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "superqt")
CHECK = ("import sys\n{imports}\n"
         "print(sorted({{m.split('.')[0] for m in sys.modules}} & set({gui!r})))")


def _gui_modules_after(imports: str) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK.format(imports=imports, gui=GUI)], capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_unetpp_api_and_cli_import_no_gui() -> None:
    assert _gui_modules_after("import contextlib, io, unetpp, unetpp.api\nfrom unetpp.cli.main import main\n"
                              "for argv in (['--help'], ['predict', '--help']):\n"
                              "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
                              "        main(argv)") == "[]"


def test_plugin_array_modules_import_no_gui() -> None:
    assert _gui_modules_after("import unetpp.napari.planes, unetpp.napari.reader, unetpp.napari.samples") == "[]"
