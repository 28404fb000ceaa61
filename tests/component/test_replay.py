"""The replay driver: files in, counts out, and the downstream ratio gives the files back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from paths import TEST_DATA

from edge.preprocess.raw import transmittance_from_counts
from hal.errors import InstrumentStateError
from hal.instrument import Instrument
from hal.replay import FULL_SCALE, ReplaySpectrometer
from spectra_io import SpectrumRecord, write_spectrum
from spectra_io.errors import SpectrumFileError

DATA = TEST_DATA / "jcamp"


def _band(center: float, height: float) -> SpectrumRecord:
    x = np.linspace(600.0, 4000.0, 851)
    return SpectrumRecord(x, 0.01 + height * np.exp(-(((x - center) / 15) ** 2)), "absorbance")


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    a, b = tmp_path / "a.jdx", tmp_path / "b.csv"
    write_spectrum(a, _band(1700.0, 0.8))
    t = _band(1100.0, 0.5)
    write_spectrum(b, SpectrumRecord(t.x, 10**-t.y, "transmittance"))  # as transmittance
    return [a, b]


def _ratio(inst: ReplaySpectrometer) -> np.ndarray:
    dark = inst.acquire(dark=True)
    inst.sample_present = False
    background = inst.acquire()
    inst.sample_present = True
    sample = inst.acquire()
    return np.asarray(transmittance_from_counts(sample.counts, background.counts, dark.counts))


def test_is_an_instrument_with_replay_identity(files: list[Path]) -> None:
    with ReplaySpectrometer(files, pixels=512) as inst:
        assert isinstance(inst, Instrument)
        assert inst.identity.model == "replay" and inst.identity.pixels == 512
        axis = inst.wavenumbers()
        assert axis.size == 512 and axis[0] == 600.0 and axis[-1] == 4000.0
        assert np.all(np.diff(axis) > 0)


def test_ratio_downstream_gives_back_each_file_cyclically(files: list[Path]) -> None:
    with ReplaySpectrometer(files, pixels=1024, noise_counts=0.0) as inst:
        axis = inst.wavenumbers()
        for expected_center, played in ((1700, files[0]), (1100, files[1]), (1700, files[0])):
            t = _ratio(inst)
            assert inst.last_file == played
            a = -np.log10(t)
            assert axis[np.argmax(a)] == pytest.approx(expected_center, abs=4)
            ref = _band(expected_center, 0.8 if expected_center == 1700 else 0.5)
            np.testing.assert_allclose(a, np.interp(axis, ref.x, ref.y), atol=2e-3)


def test_dark_and_background_frames(files: list[Path]) -> None:
    with ReplaySpectrometer(files, dark_offset=150.0, seed=1) as inst:
        dark = inst.acquire(dark=True)
        assert dark.dark and np.all(dark.counts == 150.0)
        inst.sample_present = False
        bg = inst.acquire()
        assert not bg.dark and bg.counts.min() > 150.0 + 0.25 * FULL_SCALE * 0.6
        assert bg.counts.max() == pytest.approx(150.0 + 0.6 * FULL_SCALE, rel=1e-3)
        assert inst.last_file is None  # backgrounds do not advance the playlist
        assert bg.sequence == dark.sequence + 1


def test_integration_time_scales_and_saturates(files: list[Path]) -> None:
    with ReplaySpectrometer(files, integration_ms=50.0) as inst:
        inst.sample_present = False
        normal = inst.acquire()
        assert normal.saturated == 0 and normal.integration_ms == 50.0
        inst.configure(200.0, 4)
        bright = inst.acquire()
        assert bright.saturated > 0 and bright.counts.max() == FULL_SCALE
        assert bright.coadds == 4
        with pytest.raises(ValueError):
            inst.configure(0.0, 4)
        with pytest.raises(ValueError):
            inst.configure(50.0, 0)


def test_noise_is_seeded_and_shrinks_with_coadds(files: list[Path]) -> None:
    def dark_std(seed: int, coadds: int) -> tuple[float, np.ndarray]:
        with ReplaySpectrometer(files, noise_counts=40.0, seed=seed, coadds=coadds) as inst:
            c = inst.acquire(dark=True).counts
            return float(np.std(c)), c

    s1, c1 = dark_std(7, 1)
    _, c1_again = dark_std(7, 1)
    s16, _ = dark_std(7, 16)
    np.testing.assert_array_equal(c1, c1_again)
    assert s1 == pytest.approx(40.0, rel=0.15)
    assert s16 == pytest.approx(10.0, rel=0.15)


def test_plays_hand_written_jcamp_and_json(tmp_path: Path) -> None:
    obj = {"name": "X", "spectrum": {"firstX": 3000.0, "lastX": 4100.0, "y": [90.0] * 50}}
    (tmp_path / "x.json").write_text(json.dumps(obj))
    with ReplaySpectrometer([DATA / "gen_difdup.jdx", tmp_path / "x.json"], pixels=256) as inst:
        assert inst.wavenumbers()[0] == pytest.approx(652.0)
        t = _ratio(inst)
        assert np.all(np.isfinite(t))
        t2 = _ratio(inst)  # the JSON record: 90 %T where it has data, transparent elsewhere
        axis = inst.wavenumbers()
        assert np.allclose(t2[axis >= 3000], 0.9) and np.allclose(t2[axis < 2990], 1.0)


def test_clear_errors_for_missing_corrupt_and_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="no such file") as info:
        ReplaySpectrometer([tmp_path / "absent.jdx"])
    assert info.value.path.endswith("absent.jdx")
    with pytest.raises(SpectrumFileError, match="Y-check"):
        ReplaySpectrometer([DATA / "bad_ycheck.jdx"])
    with pytest.raises(SpectrumFileError, match="at least one"):
        ReplaySpectrometer([])
    counts = tmp_path / "counts.csv"
    counts.write_text("wavenumber,counts\n1000,5\n2000,6\n")
    with pytest.raises(SpectrumFileError, match="needs a reference") as info:
        ReplaySpectrometer([counts])
    assert info.value.path == str(counts)
    far = tmp_path / "far.csv"
    far.write_text("wavenumber,absorbance\n9000,0.1\n9100,0.2\n")
    with pytest.raises(SpectrumFileError, match="outside the axis"):
        ReplaySpectrometer([DATA / "gen_affn.jdx", far])


def test_close_is_idempotent_and_final(files: list[Path]) -> None:
    inst = ReplaySpectrometer(files)
    inst.close()
    inst.close()
    assert inst.closed
    with pytest.raises(InstrumentStateError, match="closed"):
        inst.acquire()
    with pytest.raises(InstrumentStateError):
        inst.temperature_c()
