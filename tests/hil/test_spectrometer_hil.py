"""Hardware in the loop: the real front end on a Pi. Opt-in: SPECTRA_EDGE_HIL=1 and
/dev/spidev<bus>.<cs> present (bus/cs/pin from SPECTRA_EDGE_HIL_BUS/CS/DRDY, default 0/0/25)."""

from __future__ import annotations

import os

import numpy as np
import pytest

BUS = int(os.environ.get("SPECTRA_EDGE_HIL_BUS", "0"))
CS = int(os.environ.get("SPECTRA_EDGE_HIL_CS", "0"))
DRDY = int(os.environ.get("SPECTRA_EDGE_HIL_DRDY", "25"))

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("SPECTRA_EDGE_HIL") != "1" or not os.path.exists(f"/dev/spidev{BUS}.{CS}"),
        reason="hardware-in-the-loop: set SPECTRA_EDGE_HIL=1 on a Pi with the front end",
    ),
    pytest.mark.timeout(120),
]


def test_real_front_end_identity_and_frames() -> None:
    from hal import LIMITS, SpiSpectrometer

    with SpiSpectrometer.spidev(BUS, CS, data_ready_pin=DRDY, integration_ms=20, coadds=4) as spec:
        ident = spec.identity
        LIMITS.check_geometry(ident.pixels, ident.bits)
        assert (spec.integration_ms, spec.coadds) == (20.0, 4)
        assert f"chip-select {CS}" in repr(spec)
        assert np.all(np.diff(spec.wavenumbers()) > 0)
        dark = spec.acquire(dark=True)
        light = spec.acquire()
        assert dark.dark and not light.dark
        assert light.counts.mean() > dark.counts.mean()
        assert light.sequence != dark.sequence
