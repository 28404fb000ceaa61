"""Replay driver: plays recorded spectra (JCAMP-DX, CSV, JSON) as if a spectrometer took them.

For demos and field debugging. Each file's absorbance (from absorbance or transmittance data)
is resampled onto a fixed pixel axis and turned into single-beam detector counts against a
fixed reference, so the dark / background / sample path downstream works unchanged::

    dark frame        counts = offset (+ noise)
    background frame  counts = offset + R(nu)                (sample_present = False)
    sample frame      counts = offset + R(nu) * 10**(-A(nu))  (next file, cyclically)

so ``(sample - dark) / (background - dark)`` gives back the file's transmittance. ``R`` is a
smooth source-times-detector profile proportional to the integration time; pixels above the
16-bit full scale are clipped and counted as saturated.

>>> with ReplaySpectrometer(["a.jdx", "b.csv"]) as inst:  # doctest: +SKIP
...     dark = inst.acquire(dark=True)
...     inst.sample_present = False; background = inst.acquire()
...     inst.sample_present = True; sample = inst.acquire()   # plays a.jdx
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hal.errors import InstrumentStateError, ReplayFileError
from hal.instrument import Frame, InstrumentIdentity
from hal.protocol import LIMITS
from spectra_io import PathLike, SpectrumRecord, read_spectrum
from spectra_io.errors import SpectrumFileError

FULL_SCALE = 65535.0
#: Integration time at which the reference peaks at ``reference_fraction`` of full scale.
REFERENCE_INTEGRATION_MS = 50.0


class ReplaySpectrometer:
    """An :class:`~hal.instrument.Instrument` that plays spectrum files in order, cyclically.

    ``files`` are read and checked at construction (a missing or corrupt file raises
    :class:`~hal.errors.ReplayFileError` naming it). The pixel axis spans ``axis_cm1``
    (default: the range of the first file) in ``pixels`` steps; outside a file's range the
    sample does not absorb. ``noise_counts`` adds seeded Gaussian noise per scan (reduced by
    the square root of the co-adds). Set :attr:`sample_present` to False to get background
    (empty crystal) frames.
    """

    def __init__(
        self,
        files: Sequence[PathLike],
        *,
        pixels: int = 1024,
        axis_cm1: tuple[float, float] | None = None,
        integration_ms: float = 50.0,
        coadds: int = 16,
        reference_fraction: float = 0.6,
        dark_offset: float = 200.0,
        noise_counts: float = 0.0,
        temperature_c: float = 25.0,
        seed: int = 0,
        serial: str = "replay-0",
    ) -> None:
        if not files:
            raise ReplayFileError("(none)", "the replay driver needs at least one spectrum file")
        if not 16 <= pixels <= 65536:
            raise ValueError(f"pixels {pixels} outside 16..65536")
        if not 0 < reference_fraction <= 1 or dark_offset < 0 or noise_counts < 0:
            raise ValueError("need 0 < reference_fraction <= 1, dark_offset >= 0, noise >= 0")
        self._files = [Path(f) for f in files]
        records = [_read(f) for f in self._files]
        if axis_cm1 is None:
            axis_cm1 = (float(records[0].x[0]), float(records[0].x[-1]))
        lo, hi = axis_cm1
        if not 0 < lo < hi:
            raise ValueError(f"axis {axis_cm1} must be increasing and positive")
        self._axis = np.linspace(lo, hi, pixels)
        self._axis.flags.writeable = False
        self._absorbance: list[npt.NDArray[np.float64]] = []
        for path, rec in zip(self._files, records, strict=True):
            try:
                a = rec.absorbance()
            except SpectrumFileError as err:
                raise ReplayFileError(str(path), err.reason) from err
            if rec.x[-1] < lo or rec.x[0] > hi:
                raise ReplayFileError(
                    str(path), f"covers {rec.x[0]:.0f}..{rec.x[-1]:.0f} cm^-1, outside the axis"
                )
            self._absorbance.append(np.interp(self._axis, rec.x, a, left=0.0, right=0.0))
        t = (self._axis - lo) / (hi - lo)
        self._profile = reference_fraction * FULL_SCALE * (0.3 + 0.7 * np.sin(math.pi * t))
        self._dark_offset = dark_offset
        self._noise = noise_counts
        self._rng = np.random.default_rng(seed)
        self._temperature = temperature_c
        self._identity = InstrumentIdentity(
            model="replay", serial=serial, firmware="replay-1", pixels=pixels, bits=16
        )
        self._closed = False
        self._integration_ms = REFERENCE_INTEGRATION_MS
        self._coadds = 1
        self.configure(integration_ms, coadds)
        self._next = 0
        self._sequence = 0
        self._last: Path | None = None
        #: False: frames show the empty crystal (background); True: the next file is played.
        self.sample_present = True

    # -- Instrument interface ----------------------------------------------------------------

    @property
    def identity(self) -> InstrumentIdentity:
        return self._identity

    def wavenumbers(self) -> npt.NDArray[np.float64]:
        """The fixed pixel axis, cm^-1, increasing."""
        return self._axis.copy()

    def temperature_c(self) -> float:
        self._check_open()
        return self._temperature

    def configure(self, integration_ms: float, coadds: int) -> None:
        """Set integration time (scales the reference) and co-adds (reduce the noise);
        ValueError outside :data:`hal.protocol.LIMITS`."""
        self._check_open()
        LIMITS.integration_to_us(integration_ms)  # the SPI front end's ranges, so a
        LIMITS.check_coadds(coadds)  # config valid for one driver is valid for the other
        self._integration_ms = float(integration_ms)
        self._coadds = int(coadds)

    def acquire(self, dark: bool = False) -> Frame:
        """One frame: dark, background (``sample_present`` False) or the next file's sample."""
        self._check_open()
        counts = np.full(self._axis.size, self._dark_offset)
        if not dark:
            signal = self._profile * (self._integration_ms / REFERENCE_INTEGRATION_MS)
            if self.sample_present:
                signal = signal * 10.0 ** (-self._absorbance[self._next])
                self._last = self._files[self._next]
                self._next = (self._next + 1) % len(self._files)
            counts = counts + signal
        if self._noise > 0:
            sigma = self._noise / math.sqrt(self._coadds)
            counts = counts + self._rng.normal(0.0, sigma, counts.size)
        saturated = int(np.count_nonzero(counts >= FULL_SCALE))
        counts = np.clip(counts, 0.0, FULL_SCALE)
        self._sequence = (self._sequence + 1) & 0xFFFF
        return Frame(
            counts=counts,
            wavenumbers=self._axis.copy(),
            sequence=self._sequence,
            integration_ms=self._integration_ms,
            coadds=self._coadds,
            temperature_c=self._temperature,
            dark=dark,
            saturated=saturated,
            full_scale=FULL_SCALE,
        )

    def close(self) -> None:
        """Stop playing; idempotent."""
        self._closed = True

    def __enter__(self) -> ReplaySpectrometer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def integration_ms(self) -> float:
        """Integration time per scan now, ms (set with :meth:`configure`)."""
        return self._integration_ms

    @property
    def coadds(self) -> int:
        """Scans co-added into each frame now (set with :meth:`configure`)."""
        return self._coadds

    def __repr__(self) -> str:
        if self._closed:
            return "<hal.ReplaySpectrometer closed>"
        upcoming = self._files[self._next].name
        return (
            f"<hal.ReplaySpectrometer {len(self._files)} file(s), next {upcoming}, "
            f"{self._axis.size} px, integration_ms={self._integration_ms:g}, coadds={self._coadds}>"
        )

    # -- replay specifics --------------------------------------------------------------------

    @property
    def files(self) -> list[Path]:
        """The files played, in order."""
        return list(self._files)

    @property
    def last_file(self) -> Path | None:
        """The file behind the last sample frame (None before the first)."""
        return self._last

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise InstrumentStateError(f"replay ({self._identity.serial}): instrument is closed")


def _read(path: Path) -> SpectrumRecord:
    """One recorded file, its format errors raised as an instrument (replay) fault."""
    try:
        return read_spectrum(path)
    except SpectrumFileError as err:
        raise ReplayFileError(err.path, err.reason, err.line) from err
