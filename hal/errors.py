"""The one exception tree of spectra-edge.

Every error the product raises on purpose derives from :class:`SpectraEdgeError`.
The root lives in ``hal`` because ``hal`` is the bottom layer: ``edge`` imports it and
adds its own branches in :mod:`edge.errors`; ``hal`` never imports ``edge``.

Each concrete class also inherits the builtin that matches its meaning (a timeout is a
:class:`TimeoutError`, a bad frame a :class:`ValueError`, a missing device an
:class:`OSError`), so callers that only know the builtins still catch them.
"""

from __future__ import annotations


class SpectraEdgeError(Exception):
    """Root of every error spectra-edge raises on purpose."""


class HalError(SpectraEdgeError):
    """Something went wrong between the Pi and the instrument or panel."""


class DeviceNotFoundError(HalError, OSError):
    """The bus or the device on it is missing (no /dev/spidev*, unplugged, no power)."""


class IdentityError(HalError, ValueError):
    """The device answered, but it is not the instrument we expect (wrong ID or firmware)."""


class InstrumentTimeoutError(HalError, TimeoutError):
    """A wait on the instrument passed its deadline (data-ready never came, busy forever)."""


class FrameError(HalError, ValueError):
    """A frame from the instrument is malformed: bad CRC, wrong sequence, truncated."""


class CrcError(FrameError):
    """A frame's CRC does not match its content."""


class SequenceError(FrameError):
    """A frame's sequence number is not the one expected."""


class InstrumentStateError(HalError, RuntimeError):
    """The instrument was used in a state that does not allow it (closed, not configured)."""


class SpectrumFileError(HalError, ValueError):
    """A spectrum file (JCAMP-DX, CSV, JSON) cannot be read or written.

    ``path`` and ``line`` (1-based, when known) say where; ``reason`` says why.
    """

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


class PanelError(HalError, RuntimeError):
    """The operator panel (GPIO) cannot be set up or driven."""
