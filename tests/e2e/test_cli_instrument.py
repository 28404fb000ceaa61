"""``spectra-edge probe`` and ``spectra-edge acquire`` with the shipped default configuration
(simulator, real time), in-process and through the installed console script."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import jcamp
import numpy as np
import pytest

from edge.cli import main
from edge.scan.opener import library_resolver
from hal.sim import as_absorbance_fn

pytestmark = pytest.mark.timeout(120)

SCRIPT = Path(sys.executable).parent / "spectra-edge"


@pytest.fixture(autouse=True)
def default_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPECTRA_EDGE_CONFIG", raising=False)


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.toml"
    path.write_text('[instrument]\ndriver = "sim"\nintegration_ms = 5.0\ncoadds = 4\n')
    return path


def test_probe_default_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe"]) == 0
    out = capsys.readouterr().out
    for text in ("SE-ATR-MIR1", "1.2.0", "1024 x 16 bit", "640.0 .. 4010.0", "32.00"):
        assert text in out


def test_acquire_default_config_writes_jcamp_readable_by_jcamp(tmp_path: Path) -> None:
    out = tmp_path / "ethanol.jdx"
    assert main(["acquire", "--sample", "Ethanol", "--out", str(out)]) == 0
    data = jcamp.readfile(str(out))
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    assert x.size == 1024 and x[0] == pytest.approx(640.0) and x[-1] == pytest.approx(4010.0)
    assert data["yunits"].lower() == "absorbance"
    # ethanol's strongest mid-IR band is the C-O stretch near 1045-1090 cm^-1
    assert 1000 < x[np.argmax(np.where(x > 900, y, 0))] < 1100
    assert data["$sample"] == "Ethanol"


def test_acquire_csv_and_mixture(tmp_path: Path, fast_config: Path) -> None:
    out = tmp_path / "mix.csv"
    args = ["acquire", "--config", str(fast_config), "--sample", "acetone:0.5,sucrose"]
    assert main([*args, "--out", str(out)]) == 0
    rows = [r for r in csv.reader(out.read_text().splitlines()) if r and r[0][:1].isdigit()]
    x = np.array([float(r[0]) for r in rows])
    y = np.array([float(r[1]) for r in rows])
    assert x.size == 1024
    # whatever the library holds for these names, the reading is their 50/50 mixture
    resolve = library_resolver()
    expected = sum(0.5 * as_absorbance_fn(resolve(n))(x) for n in ("acetone", "sucrose"))
    inside = (x > 700) & (x < 3900)
    assert np.corrcoef(y[inside], expected[inside])[0, 1] > 0.95


def test_acquire_summary_and_bad_sample(
    fast_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["acquire", "--config", str(fast_config), "--sample", "polystyrene"]) == 0
    out = capsys.readouterr().out
    assert "polystyrene" in out
    assert re.search(r"\b(69[5-9]|70[0-2]) \(0\.9", out)  # strongest band, A about 1
    assert main(["acquire", "--config", str(fast_config), "--sample", "unobtainium"]) == 2
    assert "unobtainium" in capsys.readouterr().err


def test_probe_without_hardware_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "spi.toml"
    cfg.write_text('[instrument]\ndriver = "spi"\n[instrument.spi]\nbus = 7\nchip_select = 3\n')
    assert main(["probe", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "SPI bus 7, chip-select 3" in err and "hint" in err
    assert main(["acquire", "--config", str(cfg), "--sample", "water"]) == 2


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_console_script_probe_and_acquire(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    probe = subprocess.run(
        [str(SCRIPT), "probe"], capture_output=True, text=True, timeout=60, env=env
    )
    assert probe.returncode == 0, probe.stderr
    assert "SE-ATR-MIR1" in probe.stdout
    out = tmp_path / "x.jdx"
    acq = subprocess.run(
        [str(SCRIPT), "acquire", "--sample", "Caffeine:0.6,Lactose monohydrate", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert acq.returncode == 0, acq.stderr
    assert np.asarray(jcamp.readfile(str(out))["y"]).size == 1024


def test_acquire_unknown_extension_is_refused(
    tmp_path: Path, fast_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.xyz"
    assert main(["acquire", "--config", str(fast_config), "--out", str(out)]) == 1
    assert ".xyz" in capsys.readouterr().err and not out.exists()
