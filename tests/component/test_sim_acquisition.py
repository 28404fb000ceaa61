"""edge.scan.opener and edge.scan.acquisition on the simulator (and the replay/spi paths)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from edge.config.schema import InstrumentConfig
from edge.scan.acquisition import SimulatedOfficer, acquire_measurement, measure, take_background
from edge.scan.opener import (
    ReplaySwitch,
    SampleError,
    SimulatedCrystal,
    library_resolver,
    open_instrument,
)
from hal.clock import FakeClock
from hal.errors import DeviceNotFoundError
from hal.sim import BUILTIN_SUBSTANCES
from hal.spectrometer import SpiSpectrometer

pytestmark = pytest.mark.timeout(60)

FAST = {"integration_ms": 10.0, "coadds": 8}


def sim_cfg(**sim: object) -> InstrumentConfig:
    return InstrumentConfig.model_validate({"driver": "sim", **FAST, "sim": sim})


def test_open_sim_with_config_settings() -> None:
    cfg = sim_cfg(pixels=2048, bits=32, seed=4, temperature_c=28.5)
    with open_instrument(cfg, clock=FakeClock()) as (inst, samples):
        assert isinstance(inst, SpiSpectrometer)
        assert (inst.identity.pixels, inst.identity.bits) == (2048, 32)
        assert inst.temperature_c() == pytest.approx(28.5)
        assert isinstance(samples, SimulatedCrystal) and samples.stage.empty
        frame = inst.acquire()
        assert (frame.coadds, frame.integration_ms) == (8, 10.0)
    assert inst.closed


def test_library_names_are_simulated_from_the_library() -> None:
    from edge.library import load_library

    lib = load_library()
    name = lib.names()[0]
    cfg = sim_cfg(atmosphere=False)
    with open_instrument(cfg, clock=FakeClock()) as (inst, samples):
        assert samples is not None
        m = acquire_measurement(inst, SimulatedOfficer(samples, name))
    grid, ref = lib.absorbance(name)
    ref_on_axis = np.interp(m.wavenumbers, grid, np.nan_to_num(ref))
    inside = (m.wavenumbers > 700) & (m.wavenumbers < 3900)
    assert np.corrcoef(m.absorbance[inside], ref_on_axis[inside])[0, 1] > 0.95


def test_library_fallback_to_builtin(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        resolve = library_resolver(tmp_path / "no-such-library")
    assert "built-in" in caplog.text
    assert resolve("polystyrene") is BUILTIN_SUBSTANCES["polystyrene"]
    with pytest.raises(KeyError):
        resolve("Cocaine HCl")
    merged = library_resolver()
    assert merged("polystyrene") is BUILTIN_SUBSTANCES["polystyrene"]  # built-ins still there
    with pytest.raises(KeyError, match="neither"):
        merged("unobtainium")


def test_measurement_keeps_background_context() -> None:
    cfg = sim_cfg(atmosphere=False, temperature_c=25.0)
    opened = open_instrument(cfg, clock=FakeClock(), substances=BUILTIN_SUBSTANCES.__getitem__)
    with opened as (inst, samples):
        assert isinstance(samples, SimulatedCrystal)
        stage = samples.stage
        samples.place("acetone")  # left on from before: the officer must clear it
        officer = SimulatedOfficer(samples, "acetone")
        officer.clean_crystal()
        bg = take_background(inst, wall_clock=lambda: 1000.0)
        assert stage.empty and bg.dark.dark and not bg.frame.dark
        assert bg.temperature_c == pytest.approx(25.0) and bg.age_s(now=1060.0) == 60.0
        assert not bg.is_stale(26.0, max_age_s=120, max_delta_c=2, now=1060.0)
        assert bg.is_stale(28.0, max_age_s=120, max_delta_c=2, now=1060.0)
        assert bg.is_stale(25.0, max_age_s=30, max_delta_c=2, now=1060.0)
        officer.place_sample()
        m = measure(inst, bg)
        assert not stage.empty and m.background is bg
        idx = np.argmin(np.abs(m.wavenumbers - 1712))
        assert m.absorbance[idx] > 0.8
        assert m.sample.sequence > bg.frame.sequence


def test_old_background_at_other_temperature_still_ratios() -> None:
    cfg = sim_cfg(atmosphere=False, temperature_c=25.0)
    with open_instrument(cfg, clock=FakeClock()) as (inst, samples):
        assert isinstance(samples, SimulatedCrystal) and samples.stage.empty
        inst.configure(200.0, 8)
        bg = take_background(inst)
        assert isinstance(inst, SpiSpectrometer)
        inst.bus.frontend.temperature_c = 40.0  # type: ignore[attr-defined]
        m = measure(inst, bg)
        assert m.dark.counts.mean() > bg.dark.counts.mean() + 500  # dark grew a lot
        inside = (m.wavenumbers > 800) & (m.wavenumbers < 3800)
        assert abs(np.median(m.absorbance[inside])) < 0.01  # own darks subtracted


@pytest.mark.skipif(os.path.exists("/dev/spidev0.0"), reason="real SPI device present")
def test_spi_driver_without_hardware_is_a_clear_error() -> None:
    cfg = InstrumentConfig.model_validate({"driver": "spi"})
    with pytest.raises(DeviceNotFoundError, match=r"SPI bus 0, chip-select 0.*spidev0\.0|spidev"):
        open_instrument(cfg)


def test_replay_driver_and_its_sample_switch(tmp_path: Path) -> None:
    from spectra_io import SpectrumRecord, write_spectrum

    x = np.linspace(650, 4000, 838)
    y = 0.8 * np.exp(-0.5 * ((x - 1500) / 20) ** 2)
    path = tmp_path / "band.csv"
    write_spectrum(path, SpectrumRecord(x=x, y=y, y_units="absorbance", title="band"))
    cfg = InstrumentConfig.model_validate({"driver": "replay", "replay": {"files": [str(path)]}})
    with open_instrument(cfg) as (inst, samples):
        assert isinstance(samples, ReplaySwitch)
        with pytest.raises(SampleError, match="recorded files"):
            SimulatedOfficer(samples, "TNT")  # the replay driver names nothing
        m = acquire_measurement(inst, SimulatedOfficer(samples))
    assert m.absorbance[np.argmin(np.abs(m.wavenumbers - 1500))] == pytest.approx(0.8, abs=0.05)


def test_simulated_crystal_refuses_a_bad_spec_before_anything_changes() -> None:
    cfg = sim_cfg(atmosphere=False)
    opened = open_instrument(cfg, clock=FakeClock(), substances=BUILTIN_SUBSTANCES.__getitem__)
    with opened as (_, samples):
        assert isinstance(samples, SimulatedCrystal)
        samples.place("acetone")
        placed = samples.stage.sample
        with pytest.raises(SampleError, match="unobtainium"):
            samples.place("acetone:0.5,unobtainium:0.5")
        with pytest.raises(SampleError, match="fraction"):
            samples.check("acetone:2")
        assert samples.stage.sample is placed  # unchanged
        samples.place(None)  # leaves the crystal as it is
        assert samples.stage.sample is placed
        samples.clear()
        assert samples.stage.empty
