"""The simulator's instrument model, seen through the real driver: reproducibility, dark
current, noise, sample absorbance, mixtures, drift, atmosphere."""

from __future__ import annotations

import numpy as np
import pytest

from hal.clock import FakeClock
from hal.sim import BUILTIN_SUBSTANCES, Simulator, make_simulator, parse_sample_spec
from hal.spectrometer import SpiSpectrometer

pytestmark = pytest.mark.timeout(60)


def rig(**kw: object) -> tuple[Simulator, SpiSpectrometer]:
    kw.setdefault("clock", FakeClock())
    sim = make_simulator(**kw)
    spec = SpiSpectrometer(sim.bus, sim.data_ready, sim.clock, integration_ms=50, coadds=16)
    return sim, spec


def absorbance(sim: Simulator, spec: SpiSpectrometer, *sample: object) -> np.ndarray:
    sim.stage.remove()
    dark = spec.acquire(dark=True).counts
    bg = spec.acquire().counts
    sim.stage.place(*sample)  # type: ignore[arg-type]
    s = spec.acquire().counts
    return -np.log10(np.clip((s - dark) / (bg - dark), 1e-4, None))


def at(spec: SpiSpectrometer, a: np.ndarray, wn: float) -> float:
    return float(a[np.argmin(np.abs(spec.wavenumbers() - wn))])


def test_same_seed_same_readings_other_seed_differs() -> None:
    frames = []
    for seed in (5, 5, 6):
        sim, spec = rig(seed=seed)
        sim.stage.place("ethanol")
        frames.append(spec.acquire().counts)
        spec.close()
    np.testing.assert_array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])


def test_dark_current_grows_with_integration_and_temperature() -> None:
    sim, spec = rig(temperature_c=25.0)
    levels = {}
    for temp in (25.0, 39.0):
        sim.frontend.temperature_c = temp
        for integ in (10.0, 200.0):
            spec.configure(integ, 16)
            levels[temp, integ] = spec.acquire(dark=True).counts.mean()
    assert levels[25.0, 200.0] > levels[25.0, 10.0] + 200
    # doubling every 7 deg C: 14 deg C more is about 4x the dark current above the offset
    rise_cold = levels[25.0, 200.0] - levels[25.0, 10.0]
    rise_hot = levels[39.0, 200.0] - levels[39.0, 10.0]
    assert rise_hot / rise_cold == pytest.approx(4.0, rel=0.05)


def test_noise_falls_with_coadds() -> None:
    _sim, spec = rig(atmosphere=False)
    sd = {}
    for coadds in (1, 64):
        spec.configure(50.0, coadds)
        a, b = spec.acquire().counts, spec.acquire().counts
        sd[coadds] = np.std(a - b)
    assert sd[1] / sd[64] == pytest.approx(8.0, rel=0.25)


def test_empty_crystal_gives_flat_zero_absorbance() -> None:
    sim, spec = rig(atmosphere=False)
    sim.stage.remove()
    dark = spec.acquire(dark=True).counts
    b1, b2 = spec.acquire().counts, spec.acquire().counts
    a = -np.log10((b2 - dark) / (b1 - dark))
    wn = spec.wavenumbers()
    mid = (wn > 800) & (wn < 3800)
    assert abs(a[mid].mean()) < 0.002 and a[mid].std() < 0.01


def test_sample_bands_show_up_where_they_belong() -> None:
    sim, spec = rig(atmosphere=False)
    a = absorbance(sim, spec, "polystyrene")
    truth = BUILTIN_SUBSTANCES["polystyrene"](spec.wavenumbers())
    assert np.corrcoef(a[50:-50], truth[50:-50])[0, 1] > 0.97
    assert at(spec, a, 698) > 0.8 and at(spec, a, 2200) < 0.06


def test_mixture_fractions_and_array_sources() -> None:
    sim, spec = rig(atmosphere=False, seed=9)
    grid = np.linspace(600, 4100, 900)
    band = np.exp(-0.5 * ((grid - 1700) / 15) ** 2)
    full = absorbance(sim, spec, ((grid, band), 1.0))
    half = absorbance(sim, spec, ((grid, band), 0.5), ("acetone", 0.5))
    base_full = np.median(full)
    base_half = np.median(half)
    # band at 1700 (array source) plus acetone's 1712 band at half strength
    assert at(spec, full, 1700) - base_full == pytest.approx(1.0, abs=0.1)
    assert at(spec, half, 3400) - base_half < 0.05
    assert at(spec, half, 1360) - base_half == pytest.approx(0.5 * 0.55, abs=0.08)


def test_wavelength_drifts_with_temperature() -> None:
    sim, spec = rig(atmosphere=False, temperature_c=25.0)
    grid = np.linspace(600, 4100, 20000)
    narrow = (grid, np.exp(-0.5 * ((grid - 2000.0) / 6.0) ** 2))
    wn = spec.wavenumbers()
    win = (wn > 1960) & (wn < 2040)

    def centroid(a: np.ndarray) -> float:
        w = np.clip(a[win] - np.median(a), 0, None)
        return float((wn[win] * w).sum() / w.sum())

    c25 = centroid(absorbance(sim, spec, (narrow, 1.0)))
    sim.frontend.temperature_c = 65.0
    c65 = centroid(absorbance(sim, spec, (narrow, 1.0)))
    # the true axis moves +0.05 cm^-1/degC; the stored calibration does not, so the band
    # appears 40 * 0.05 = 2 cm^-1 lower on the reported axis
    assert c25 - c65 == pytest.approx(2.0, abs=0.5)


def test_atmosphere_leaves_co2_and_water_residues() -> None:
    res = {}
    for atmosphere in (False, True):
        sim, spec = rig(atmosphere=atmosphere, seed=2)
        a = absorbance(sim, spec, ((np.array([600.0, 4100.0]), np.zeros(2)), 1.0))
        wn = spec.wavenumbers()
        co2 = (wn > 2320) & (wn < 2380)
        quiet = (wn > 2500) & (wn < 2700)
        res[atmosphere] = np.abs(a[co2] - np.median(a[quiet])).max()
    assert res[True] > 3 * res[False]


def test_sample_spec_parsing() -> None:
    assert parse_sample_spec("a") == [("a", 1.0)]
    assert parse_sample_spec("a:0.7, b") == [("a", 0.7), ("b", pytest.approx(0.3))]
    for bad in ("", "a:2", "a:0.7,b:0.6", ":0.5", "a:x"):
        with pytest.raises(ValueError):
            parse_sample_spec(bad)
    sim = make_simulator(clock=FakeClock())
    with pytest.raises(KeyError, match="unobtainium"):
        sim.stage.place("unobtainium")
