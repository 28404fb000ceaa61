"""Raw detector counts to transmittance and absorbance (single-beam ratio)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Transmittance floor so that log10 stays finite where the sample absorbs everything.
MIN_TRANSMITTANCE = 1e-4


def transmittance_from_counts(
    sample: FloatArray, background: FloatArray, dark: FloatArray | None = None
) -> FloatArray:
    """T = (S - D) / (B - D), clipped to [MIN_TRANSMITTANCE, 1.5].

    *sample* is the single-beam reading with the sample on the crystal, *background* the same
    with the crystal empty, *dark* the reading with the source off (zeros when None).
    Pixels where the background has no signal above dark give T = 1 (no information).
    """
    s = np.asarray(sample, dtype=np.float64)
    b = np.asarray(background, dtype=np.float64)
    d = np.zeros_like(s) if dark is None else np.asarray(dark, dtype=np.float64)
    if not (s.shape == b.shape == d.shape):
        raise ValueError(f"shape mismatch: sample {s.shape}, background {b.shape}, dark {d.shape}")
    ref = b - d
    valid = ref > 1e-9
    t = np.ones_like(s)
    t[valid] = (s[valid] - d[valid]) / ref[valid]
    return np.clip(t, MIN_TRANSMITTANCE, 1.5)


def absorbance_from_counts(
    sample: FloatArray, background: FloatArray, dark: FloatArray | None = None
) -> FloatArray:
    """A = -log10(T) with T from :func:`transmittance_from_counts`."""
    return -np.log10(transmittance_from_counts(sample, background, dark))
