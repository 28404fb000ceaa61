"""The one record of a scan, from the instrument to the archive and the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.identify.result import Identification
from edge.preprocess.quality import QualityReport

FloatArray = npt.NDArray[np.float64]

#: The arrays a scan may carry, by name (the archive stores them under these names).
ARRAY_NAMES = ("wavenumbers", "spectrum", "raw_wavenumbers", "sample", "background", "dark")


@dataclass(frozen=True)
class ScanData:
    """One scan: its spectra, and the decision when it was just made.

    * ``wavenumbers``/``spectrum``: the processed spectrum, absorbance on the library grid;
    * ``raw_wavenumbers`` with ``sample``/``background``/``dark``: the detector counts per
      pixel, when the scan came from an instrument;
    * ``identification`` and ``quality``: the decision and the gates behind it. A scan read
      back from the archive has neither: its record keeps the result as it was published;
    * ``reference``: the consignment reference given with the scan (officer, control room);
    * ``extra``: anything a caller adds for its own report (e.g. ``seconds``).
    """

    wavenumbers: FloatArray
    spectrum: FloatArray
    identification: Identification | None = None
    quality: QualityReport | None = None
    raw_wavenumbers: FloatArray | None = None
    sample: FloatArray | None = None
    background: FloatArray | None = None
    dark: FloatArray | None = None
    reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def decision(self) -> Identification:
        """The identification; :class:`ValueError` for a scan that carries none (read back
        from the archive)."""
        if self.identification is None:
            raise ValueError("this scan carries no identification (read back from the archive?)")
        return self.identification

    def arrays(self) -> dict[str, FloatArray]:
        """The arrays this scan carries, by name (absent ones left out), as float64."""
        out: dict[str, FloatArray] = {}
        for name in ARRAY_NAMES:
            value = getattr(self, name)
            if value is not None:
                out[name] = np.asarray(value, dtype=np.float64)
        return out

    def with_reference(self, reference: str | None) -> ScanData:
        """The same scan with the consignment *reference*."""
        return replace(self, reference=reference)
