"""Packaging hook: the shipped reference library and classifier go into the wheel.

``models/`` stays data at the repository root (each part with its own ``manifest.json``).
Building copies ``models/library`` and ``models/model`` into the wheel as package data under
``edge/_shipped/``, where :func:`edge.shipped.shipped_models_dir` finds them after a plain
``pip install``. An editable install reads them from the source tree instead.
Everything else about the package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: The parts of models/ a device needs (library-src/ only builds the library).
SHIPPED_PARTS = ("library", "model")


class build_py_with_models(build_py):  # noqa: N801 (setuptools command naming)
    """``build_py`` that also copies the shipped models into ``edge/_shipped/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "edge" / "_shipped"
        for part in SHIPPED_PARTS:
            source = ROOT / "models" / part
            if not (source / "manifest.json").is_file():
                raise SystemExit(f"models/{part}/manifest.json missing: cannot build a release")
            shutil.rmtree(target / part, ignore_errors=True)
            shutil.copytree(source, target / part)


setup(cmdclass={"build_py": build_py_with_models})
