"""The root of spectra-edge's one exception tree, and the file-format errors of this layer.

The root lives here because :mod:`spectra_io` is the bottom layer: :mod:`hal` and :mod:`edge`
import it and add their own branches (:mod:`hal.errors`, :mod:`edge.errors`); nothing here
imports either of them.
"""

from __future__ import annotations

import os
import sys
import warnings


class SpectraEdgeError(Exception):
    """Root of every error spectra-edge raises on purpose."""


def _where(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path


class SpectrumFileError(SpectraEdgeError, ValueError):
    """A spectrum file (JCAMP-DX, CSV, JSON) cannot be read or written.

    ``path`` and ``line`` (1-based, when known) say where; ``reason`` says why. A record
    built in memory, not read from a file, is named ``<record>``.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{_where(path, line)}: {reason}")


class SpectrumFileWarning(UserWarning):
    """A spectrum file was read, but something in it is off within a tolerance.

    Issued with :func:`warnings.warn`; ``path``, ``line`` and ``reason`` as in
    :class:`SpectrumFileError`.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{_where(path, line)}: {reason}")


def warn_file(path: str, reason: str, line: int | None = None) -> None:
    """Issue a :class:`SpectrumFileWarning` attributed to the code that called the reader."""
    here = os.path.dirname(__file__)
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == here:
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(SpectrumFileWarning(path, reason, line), stacklevel=level)


__all__ = ["SpectraEdgeError", "SpectrumFileError", "SpectrumFileWarning", "warn_file"]
