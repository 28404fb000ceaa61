"""The root of spectra-edge's one exception tree, and the file-format errors of this layer.

The root lives here because :mod:`spectra_io` is the bottom layer: :mod:`hal` and :mod:`edge`
import it and add their own branches (:mod:`hal.errors`, :mod:`edge.errors`); nothing here
imports either of them.
"""

from __future__ import annotations


class SpectraEdgeError(Exception):
    """Root of every error spectra-edge raises on purpose."""


class SpectrumFileError(SpectraEdgeError, ValueError):
    """A spectrum file (JCAMP-DX, CSV, JSON) cannot be read or written.

    ``path`` and ``line`` (1-based, when known) say where; ``reason`` says why.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


__all__ = ["SpectraEdgeError", "SpectrumFileError"]
