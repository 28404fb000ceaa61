"""Library import: JCAMP-DX, CSV and JSON records -> absorbance on the grid, metadata, problems."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from paths import SHARED_DATA

from edge.errors import LibraryError
from edge.library import Library, LibraryEntry, load_library
from edge.library.build import build_library
from edge.library.categories import map_enfsi_category
from edge.library.convert import record_to_grid, trim_padding
from edge.preprocess.grid import STANDARD_GRID
from spectra_io import SpectrumRecord

ENFSI = SHARED_DATA / "enfsi-atr"


def _bands(x: np.ndarray, centres: list[tuple[float, float, float]]) -> np.ndarray:
    out = np.zeros_like(x)
    for c, h, w in centres:
        out += h * np.exp(-4 * np.log(2) * ((x - c) / w) ** 2)
    return out


X = np.arange(600.0, 4000.01, 2.0)
# Like a real measurement, each spectrum carries a little noise (no exactly flat stretch).
_NOISE = np.random.default_rng(11).normal(0, 0.002, (3, X.size))
A_ONE = _bands(X, [(1710, 0.8, 24), (1265, 0.6, 20), (730, 0.4, 16), (2950, 0.2, 40)]) + _NOISE[0]
A_TWO = _bands(X, [(1535, 0.9, 24), (1345, 0.7, 20), (910, 0.3, 12)]) + _NOISE[1]
A_THREE = _bands(X, [(3300, 0.3, 200), (1050, 0.9, 30), (880, 0.4, 16)]) + _NOISE[2]


def _on_grid(a: np.ndarray) -> np.ndarray:
    return np.interp(STANDARD_GRID, X, a)


def _jcamp(path: Path, absorbance: np.ndarray, title: str, extra: str = "") -> None:
    """A JCAMP-DX 4.24 file, AFFN (X++(Y..Y)), transmittance, written by hand."""
    t = 10.0 ** (-absorbance)
    lines = [
        f"##TITLE={title}",
        "##JCAMP-DX=4.24",
        "##DATA TYPE=INFRARED SPECTRUM",
        "##XUNITS=1/CM",
        "##YUNITS=TRANSMITTANCE",
        f"##FIRSTX={X[0]:.1f}",
        f"##LASTX={X[-1]:.1f}",
        f"##NPOINTS={X.size}",
        "##XFACTOR=1",
        "##YFACTOR=0.000001",
        f"##DELTAX={X[1] - X[0]:.1f}",
        *([extra] if extra else []),
        "##XYDATA=(X++(Y..Y))",
    ]
    for i in range(0, X.size, 5):
        ys = " ".join(str(round(v * 1e6)) for v in t[i : i + 5])
        lines.append(f"{X[i]:.1f} {ys}")
    lines.append("##END=")
    path.write_text("\n".join(lines) + "\n")


def _csv(path: Path, absorbance: np.ndarray, header_comments: str = "") -> None:
    rows = [f"{x:.2f},{100 * 10 ** (-a):.5f}" for x, a in zip(X, absorbance, strict=True)]
    path.write_text(header_comments + "wavenumber_cm-1,percent_transmittance\n" + "\n".join(rows))


def _json_record(name: str, category: str, absorbance: np.ndarray, pad_below: float = 0) -> dict:
    y = 100 * 10 ** (-absorbance)
    y[pad_below > X] = 100.0  # ENFSI-style padding: no data at the low end
    return {
        "id": name.lower(),
        "name": name,
        "aliases": [f"{name} alias"],
        "formula": "C1H1",
        "form": "HCl",
        "category": category,
        "spectrum": {"firstX": float(X[0]), "lastX": float(X[-1]), "y": [round(v, 4) for v in y]},
    }


@pytest.fixture()
def sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    _jcamp(
        src / "one.jdx", A_ONE, "Compound one", "##CAS REGISTRY NO=50-36-2\n##$CATEGORY=precursor"
    )
    _csv(src / "two.csv", A_TWO, "# name: Compound two\n# category: explosive\n")
    (src / "three.json").write_text(
        json.dumps([_json_record("Compound three", "cutting-agents", A_THREE, pad_below=700)])
    )
    return src


def test_build_imports_all_three_formats_as_absorbance(sources: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.toml"
    meta.write_text(
        '[[entry]]\nfile = "one.jdx"\ncategory = "narcotic"\nfamily = "stimulant"\n'
        'aliases = ["first"]\nnotes = "from a test"\n'
    )
    report = build_library([sources], tmp_path / "lib", meta)
    assert report.problems == []
    lib = load_library(tmp_path / "lib")
    assert lib.names() == ["Compound one", "Compound three", "Compound two"]
    for name, truth in (("one", A_ONE), ("two", A_TWO), ("three", A_THREE)):
        _, a = lib.absorbance(f"compound {name}")
        valid = (STANDARD_GRID >= 704) if name == "three" else slice(None)
        np.testing.assert_allclose(a[valid], _on_grid(truth)[valid], atol=0.02)
    one = lib.entry("first")
    assert (one.category, one.family, one.severity) == ("narcotic", "stimulant", "alarm")
    assert one.cas == "50-36-2" and one.notes == "from a test"
    two = lib.entry("compound two")
    assert (two.category, two.severity) == ("explosive", "alarm")
    three = lib.entry("Compound three alias")
    assert (three.category, three.salt_form, three.formula) == ("cutting_agent", "HCl", "C1H1")


def test_padding_is_missing_data_not_zero_absorbance() -> None:
    y = 100 * 10 ** (-A_THREE)
    y[X < 700] = 100.0
    rec = SpectrumRecord(X, y, "percent_transmittance")
    a, (lo, hi) = record_to_grid(rec, STANDARD_GRID)
    assert 699 < lo < 704 and hi == STANDARD_GRID[-1]
    lib = Library(
        STANDARD_GRID, a[None, :], [LibraryEntry.create("p", "benign", valid_range=(lo, hi))]
    )
    np.testing.assert_array_equal(lib.valid_mask()[0], lo <= STANDARD_GRID)
    assert np.all(a[lo > STANDARD_GRID] == 0)
    # The same spectrum without padding has a measured range starting at the grid start.
    _, (lo2, _) = record_to_grid(
        SpectrumRecord(X, 100 * 10 ** (-A_THREE), "percent_transmittance"), STANDARD_GRID
    )
    assert lo2 == STANDARD_GRID[0]
    # A short constant stretch (two points) is data, not padding.
    xs, _ = trim_padding(np.arange(5.0), np.array([1.0, 1.0, 2.0, 3.0, 4.0]))
    assert xs.size == 5
    with pytest.raises(ValueError, match="flat"):
        trim_padding(np.arange(5.0), np.ones(5))


def test_fine_source_is_averaged_not_aliased() -> None:
    x = np.arange(600.0, 4000.0, 0.25)
    rng = np.random.default_rng(3)
    noisy = np.interp(x, X, A_ONE) + rng.normal(0, 0.05, x.size)
    a, _ = record_to_grid(SpectrumRecord(x, noisy, "absorbance"), STANDARD_GRID)
    resid = a - _on_grid(A_ONE)
    assert float(np.std(resid)) < 0.05 / 3  # 16 samples per 4 cm-1 step: noise averaged down


def test_record_units_and_coverage_rejected() -> None:
    rec = SpectrumRecord(X, np.ones_like(X) + A_ONE, "counts")
    with pytest.raises(LibraryError, match="counts"):
        record_to_grid(rec, STANDARD_GRID)
    narrow = X[(X > 1000) & (X < 1200)]
    with pytest.raises(LibraryError, match="too little"):
        record_to_grid(
            SpectrumRecord(narrow, narrow * 0 + 0.1 + narrow * 1e-5, "absorbance"), STANDARD_GRID
        )


def test_bad_files_reported_one_by_one_and_skipped(sources: Path, tmp_path: Path) -> None:
    bad = sources / "bad"
    bad.mkdir()
    (bad / "truncated.jdx").write_text("##TITLE=cut\n##JCAMP-DX=4.24\n##XUNITS=1/CM\n##YUNI")
    (bad / "words.csv").write_text("wavenumber_cm-1,absorbance\n1000,0.1\n1002,abc\n")
    (bad / "nospectrum.json").write_text(json.dumps({"name": "x", "category": "stimulants"}))
    (bad / "counts.csv").write_text(
        "wavenumber_cm-1,counts\n" + "\n".join(f"{x},{1000 + x}" for x in range(700, 3900, 4))
    )
    (bad / "nocat.csv").write_text(
        "wavenumber_cm-1,absorbance\n"
        + "\n".join(f"{x},{0.1 + x * 1e-5}" for x in range(700, 3900, 4))
    )
    dup = sources / "zz_dup.json"
    dup.write_text(json.dumps(_json_record("Compound three", "other", A_ONE)))
    report = build_library([sources], tmp_path / "lib")
    assert len(report.entries) == 3
    by_file = {Path(p.path).name: p for p in report.problems}
    assert set(by_file) == {
        "truncated.jdx",
        "words.csv",
        "nospectrum.json",
        "counts.csv",
        "nocat.csv",
        "zz_dup.json",
    }
    assert by_file["words.csv"].line == 3 and "non-numeric" in by_file["words.csv"].reason
    assert "spectrum" in by_file["nospectrum.json"].reason
    assert "counts" in by_file["counts.csv"].reason
    assert "category" in by_file["nocat.csv"].reason
    assert "duplicate" in by_file["zz_dup.json"].reason
    assert str(by_file["words.csv"]).endswith(":3: " + by_file["words.csv"].reason)
    assert len(load_library(tmp_path / "lib")) == 3


def test_nothing_half_imported(sources: Path, tmp_path: Path) -> None:
    (sources / "broken.csv").write_text("wavenumber_cm-1,absorbance\n1000,oops\n")
    out = tmp_path / "lib"
    with pytest.raises(LibraryError, match="nothing written"):
        build_library([sources], out, strict=True)
    assert not out.exists()
    # An existing library is untouched when a build imports nothing.
    build_library([sources / "two.csv"], out)
    before = load_library(out).content_hash
    with pytest.raises(LibraryError, match="no spectrum"):
        build_library([sources / "broken.csv"], out)
    assert load_library(out).content_hash == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lib", "src"]


def test_sidecar_csv_and_default_category(sources: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "file,name,category,family,cas,aliases\none,Renamed one,precursor,,123-45-6,a1;a2\n"
    )
    report = build_library([sources], tmp_path / "lib", meta, default_category="benign")
    lib = load_library(tmp_path / "lib")
    assert report.problems == []
    e = lib.entry("a2")
    assert (e.name, e.category, e.cas, e.severity) == (
        "Renamed one",
        "precursor",
        "123-45-6",
        "warn",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("file,colour\none,red\n")
    with pytest.raises(LibraryError, match="colour"):
        build_library([sources], tmp_path / "lib2", bad)
    with pytest.raises(ValueError, match="category"):
        build_library([sources], tmp_path / "lib3", default_category="snacks")


def test_enfsi_category_mapping() -> None:
    assert map_enfsi_category("stimulants", "Cocaine") == ("narcotic", "stimulant")
    assert map_enfsi_category("stimulants", "Mephedrone") == ("narcotic", "cathinone")
    assert map_enfsi_category("stimulants", "Caffeine") == ("cutting_agent", None)
    assert map_enfsi_category("other", "GHB") == ("narcotic", "sedative")
    assert map_enfsi_category("benzodiazepines", "Diazepam") == ("narcotic", "sedative")
    assert map_enfsi_category("tryptamines", "DMT") == ("narcotic", "hallucinogen")
    assert map_enfsi_category("precursors", "Safrole") == ("precursor", None)
    with pytest.raises(ValueError, match="unknown"):
        map_enfsi_category("sweets", "x")


@pytest.mark.shared_data
@pytest.mark.skipif(not ENFSI.is_dir(), reason="../shared/data/enfsi-atr not present")
def test_build_from_real_enfsi_records(tmp_path: Path) -> None:
    report = build_library([ENFSI], tmp_path / "enfsi")
    assert report.problems == [] and len(report.entries) == 69
    lib = load_library(tmp_path / "enfsi")
    assert lib.entry("cocaine").family == "stimulant"
    assert lib.entry("mephedrone").family == "cathinone"
    assert lib.entry("caffeine").category == "cutting_agent"
    assert lib.entry("heroin").severity == "alarm"
    grid, a = lib.absorbance("cocaine")
    carbonyl = (grid > 1650) & (grid < 1800)
    assert 1700 <= grid[carbonyl][int(np.argmax(a[carbonyl]))] <= 1740  # ester C=O bands
    assert all(e.valid_range is not None for e in lib.entries)
    assert np.all(np.isfinite(lib.spectra))


# --- issue 8: a bad file never stops a build; side-car tables are not spectra ---------------


def test_a_json_number_with_400_digits_skips_that_file_only(sources: Path, tmp_path: Path) -> None:
    record = _json_record("Huge", "other", A_ONE)
    text = json.dumps(record).replace('"firstX": 600.0', '"firstX": 1' + "0" * 399)
    (sources / "huge.json").write_text(text)
    report = build_library([sources], tmp_path / "lib")
    assert len(report.entries) == 3
    (problem,) = report.problems
    assert Path(problem.path).name == "huge.json" and problem.kind == "unreadable"
    assert "number of 400 characters" in problem.reason


def test_any_exception_in_reading_a_file_skips_that_file_only(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge.library.build as build

    real = build.read_spectrum

    def flaky(path: Path) -> SpectrumRecord:
        if Path(path).name == "two.csv":
            raise RuntimeError("disk controller on fire")
        return real(path)

    monkeypatch.setattr(build, "read_spectrum", flaky)
    report = build_library([sources], tmp_path / "lib")
    assert sorted(e.name for e in report.entries) == ["Compound one", "Compound three"]
    (problem,) = report.problems
    assert problem.kind == "unexpected" and "RuntimeError" in problem.reason
    assert "disk controller on fire" in problem.reason
    assert "1 skipped (1 unexpected)" in report.summary()


def test_sidecar_tables_among_the_spectra_are_ignored_not_skipped(
    sources: Path, tmp_path: Path
) -> None:
    meta = sources / "metadata.csv"
    meta.write_text("file,name,category\none,Renamed one,precursor\n")
    (sources / "other_notes.csv").write_text("# notes\nname,notes\nCompound two,from a test\n")
    report = build_library([sources], tmp_path / "lib", meta)
    assert report.problems == []
    assert sorted(Path(p.path).name for p in report.ignored) == ["metadata.csv", "other_notes.csv"]
    assert all(p.kind == "not a spectrum" for p in report.ignored)
    assert report.files_read == 3
    assert load_library(tmp_path / "lib").entry("renamed one").category == "precursor"
    assert report.summary() == "3 entries from 3 file(s), 0 skipped, 2 ignored (not a spectrum)"


def test_a_file_read_with_a_warning_is_imported_and_the_warning_reported(
    sources: Path, tmp_path: Path
) -> None:
    from paths import TEST_DATA

    shutil.copy(TEST_DATA / "jcamp" / "public" / "jtpolysd.jdx", sources / "polyethylene.jdx")
    report = build_library([sources], tmp_path / "lib", default_category="benign")
    assert report.problems == [] and len(report.entries) == 4
    (warning,) = report.warnings
    assert Path(warning.path).name == "polyethylene.jdx" and warning.line == 18
    assert "FIRSTY" in warning.reason and warning.kind == "warning"
    assert report.summary().endswith(", 1 warning(s)")
