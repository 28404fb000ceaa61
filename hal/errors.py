"""The one exception tree of spectra-edge.

Every error the product raises on purpose derives from :class:`SpectraEdgeError`.
The root, :class:`SpectraEdgeError`, lives in :mod:`spectra_io.errors` (the bottom layer,
spectrum files and atomic writes) and is re-exported here; ``hal`` adds the hardware branch,
:mod:`edge.errors` the application's; ``hal`` never imports ``edge``.

Each concrete class also inherits the builtin that matches its meaning (a timeout is a
:class:`TimeoutError`, a bad frame a :class:`ValueError`, a missing device an
:class:`OSError`), so callers that only know the builtins still catch them.
"""

from __future__ import annotations

from spectra_io.errors import SpectraEdgeError, SpectrumFileError


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


class ReplayFileError(HalError, SpectrumFileError):
    """A recorded spectrum file the replay driver was given cannot be played."""


class PanelError(HalError, RuntimeError):
    """The operator panel (GPIO) cannot be set up or driven."""
