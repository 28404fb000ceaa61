"""``spectra-edge library build | info | add | remove | export`` through the real CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from paths import PROJECT

from edge.cli import main
from edge.library import load_library
from spectra_io import read_spectrum

SHIPPED = PROJECT / "models" / "library"


def _csv(path: Path, centre: float, name: str = "", category: str = "") -> Path:
    rng = np.random.default_rng(int(centre))
    x = np.arange(650.0, 4000.0, 2.0)
    a = 0.5 * np.exp(-(((x - centre) / 15) ** 2)) + rng.normal(0, 0.002, x.size) + 0.01
    head = (f"# name: {name}\n" if name else "") + (f"# category: {category}\n" if category else "")
    rows = "\n".join(f"{xi:.1f},{ai:.6f}" for xi, ai in zip(x, a, strict=True))
    path.write_text(head + "wavenumber_cm-1,absorbance\n" + rows + "\n")
    return path


@pytest.fixture()
def lib(tmp_path: Path) -> Path:
    out = tmp_path / "lib"
    shutil.copytree(SHIPPED, out)
    return out


def test_build_reports_skipped_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _csv(src / "a.csv", 1700, "Alpha", "precursor")
    _csv(src / "b.csv", 1200, "Beta")
    (src / "c.csv").write_text("wavenumber_cm-1,absorbance\n1000,x\n")
    out = tmp_path / "built"
    rc = main(["library", "build", str(src), "-o", str(out), "--category", "benign"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "2 entries from 3 file(s), 1 skipped" in cap.out
    assert "skipped" in cap.err and "c.csv:2" in cap.err
    built = load_library(out)
    assert [(e.name, e.category) for e in built.entries] == [
        ("Alpha", "precursor"),
        ("Beta", "benign"),
    ]
    rc = main(["library", "build", str(src), "-o", str(tmp_path / "strict"), "--strict"])
    assert rc == 1 and not (tmp_path / "strict").exists()
    assert "nothing written" in capsys.readouterr().err


def test_build_summary_says_what_was_skipped_and_ignored_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _csv(src / "a.csv", 1700, "Alpha")
    (src / "huge.json").write_text(
        '{"name": "h", "spectrum": {"firstX": 1' + "0" * 399 + ', "lastX": 4000, "y": [1, 2]}}'
    )
    (src / "meta.csv").write_text("file,category\na,precursor\n")
    rc = main(["library", "build", str(src), "-o", str(tmp_path / "out"), "--metadata",
               str(src / "meta.csv")])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0
    assert "1 entries from 2 file(s), 1 skipped (1 unreadable), 1 ignored (not a spectrum)" in (
        cap.out
    )
    assert "huge.json: a number of 400 characters" in cap.err
    assert "ignored" in cap.err and "meta.csv" in cap.err
    assert "Traceback" not in cap.err


def test_info_prints_counts_grid_and_hash(lib: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["library", "info", str(lib), "--entries"]) == 0
    out = capsys.readouterr().out
    loaded = load_library(lib)
    assert loaded.content_hash in out
    assert "650-3998 cm-1, step 4, 838 points" in out
    for category, count in loaded.category_counts().items():
        assert any(category in line and f" {count} " in line for line in out.splitlines())


def test_add_remove_export_round_trip(
    lib: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = load_library(lib)
    scan = _csv(tmp_path / "scan.csv", 1450)
    rc = main(
        ["library", "add", str(lib), str(scan), "--name", "Seized powder 7",
         "--category", "narcotic", "--family", "opioid", "--alias", "SP7"]
    )  # fmt: skip
    assert rc == 0
    after = load_library(lib)
    assert len(after) == len(before) + 1
    entry = after.entry("sp7")
    assert entry.user_added and entry.severity == "alarm" and entry.family == "opioid"
    grid, a = after.absorbance("Seized powder 7")
    assert abs(grid[int(np.argmax(a))] - 1450) <= 4

    out = tmp_path / "export.jdx"
    assert main(["library", "export", str(lib), "sp7", "-o", str(out)]) == 0
    rec = read_spectrum(out)
    assert rec.title == "Seized powder 7" and rec.y_units == "absorbance"
    np.testing.assert_allclose(rec.y, a, atol=1e-6)
    csv_out = tmp_path / "export.csv"
    assert main(["library", "export", str(lib), "Seized powder 7", "-o", str(csv_out)]) == 0
    np.testing.assert_allclose(read_spectrum(csv_out).y, a, atol=1e-5)

    # Adding the same name again is refused; the library is unchanged.
    assert (
        main(["library", "add", str(lib), str(scan), "--name", "sp7", "--category", "benign"]) == 1
    )
    assert "already" in capsys.readouterr().err
    assert load_library(lib).content_hash == after.content_hash

    assert main(["library", "remove", str(lib), "SEIZED POWDER 7"]) == 0
    assert load_library(lib).content_hash == before.content_hash
    assert main(["library", "remove", str(lib), "no such thing"]) == 1


def test_add_rejects_narcotic_without_family(lib: Path, tmp_path: Path) -> None:
    scan = _csv(tmp_path / "scan.csv", 1100)
    rc = main(["library", "add", str(lib), str(scan), "--name", "X", "--category", "narcotic"])
    assert rc == 1
    assert "X" not in load_library(lib)


def test_info_on_corrupt_library_fails_cleanly(lib: Path) -> None:
    with open(lib / "spectra.npy", "r+b") as fh:
        fh.seek(-3, 2)
        fh.write(b"\x7f")
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "library", "info", str(lib)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "hash mismatch" in proc.stderr


def test_console_script_info_on_shipped_library() -> None:
    exe = Path(sys.executable).parent / "spectra-edge"
    if not exe.exists():
        pytest.skip("console script not installed")
    proc = subprocess.run([str(exe), "library", "info"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert load_library(SHIPPED).content_hash in proc.stdout


def test_exported_jcamp_rebuilds_with_metadata(tmp_path: Path) -> None:
    shipped = load_library(SHIPPED)
    for name in ("Cocaine HCl", "TATP", "Sodium bicarbonate"):
        out = tmp_path / "src" / f"{name}.jdx"
        out.parent.mkdir(exist_ok=True)
        assert main(["library", "export", str(SHIPPED), name, "-o", str(out)]) == 0
    assert main(["library", "build", str(tmp_path / "src"), "-o", str(tmp_path / "re")]) == 0
    rebuilt = load_library(tmp_path / "re")
    for e in rebuilt.entries:
        orig = shipped.entry(e.name)
        assert (e.category, e.family, e.cas, e.formula, e.salt_form, e.aliases) == (
            orig.category, orig.family, orig.cas, orig.formula, orig.salt_form, orig.aliases
        )  # fmt: skip
        np.testing.assert_allclose(
            rebuilt.absorbance(e.name)[1], shipped.absorbance(e.name)[1], atol=1e-5
        )
