"""SpectrumRecord, CSV and JSON records, and reading/writing by extension."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from paths import SHARED_DATA

from spectra_io import (
    SpectrumRecord,
    read_csv,
    read_json_records,
    read_spectrum,
    write_csv,
    write_spectrum,
)
from spectra_io.errors import SpectrumFileError

SHARED = SHARED_DATA / "enfsi-atr"


def _rec() -> SpectrumRecord:
    x = np.linspace(650.0, 4000.0, 200)
    y = 0.05 + np.exp(-(((x - 1600) / 25) ** 2))
    return SpectrumRecord(x, y, "absorbance", "t", {"cas": "1-2-3", "category": "benign"})


# -- record ------------------------------------------------------------------------------------


def test_record_is_float64_and_read_only() -> None:
    rec = SpectrumRecord([1, 2, 3], [0, 1, 0], "absorbance")
    assert rec.x.dtype == np.float64 and rec.y.dtype == np.float64 and len(rec) == 3
    with pytest.raises(ValueError):
        rec.y[0] = 5.0


@pytest.mark.parametrize(
    ("x", "y", "units", "reason"),
    [
        ([1, 2], [1, 2], "furlongs", "unknown y units"),
        ([1, 2, 3], [1, 2], "absorbance", "x has 3 points"),
        ([1], [1], "absorbance", "at least 2"),
        ([1, np.nan], [1, 2], "absorbance", "x contains NaN"),
        ([1, 2], [1, np.inf], "absorbance", "y contains NaN"),
        ([2, 1], [1, 2], "absorbance", "strictly increasing"),
        ([1, 1], [1, 2], "absorbance", "strictly increasing"),
        ([-1, 2], [1, 2], "absorbance", "positive"),
        ([[1, 2]], [[1, 2]], "absorbance", "one-dimensional"),
    ],
)
def test_record_refuses_invalid_data(x: list, y: list, units: str, reason: str) -> None:
    with pytest.raises(SpectrumFileError, match=reason):
        SpectrumRecord(np.asarray(x, float), np.asarray(y, float), units)


def test_absorbance_conversion() -> None:
    x = [1.0, 2.0, 3.0]
    assert SpectrumRecord(x, [100.0, 10.0, 1.0], "percent_transmittance").absorbance() == (
        pytest.approx([0.0, 1.0, 2.0])
    )
    assert SpectrumRecord(x, [1.0, 0.1, 0.0], "transmittance").absorbance() == (
        pytest.approx([0.0, 1.0, 6.0])
    )
    with pytest.raises(SpectrumFileError, match="needs a reference"):
        SpectrumRecord(x, [1.0, 2.0, 3.0], "counts").absorbance()


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_data_title_and_metadata(tmp_path: Path) -> None:
    rec = _rec()
    path = tmp_path / "s.csv"
    write_csv(path, rec)
    assert path.read_text().splitlines()[3] == "wavenumber_cm-1,absorbance"
    back = read_csv(path)
    np.testing.assert_allclose(back.x, rec.x, rtol=1e-9)
    np.testing.assert_allclose(back.y, rec.y, rtol=1e-9)
    assert back.title == "t" and back.metadata == rec.metadata
    plain = tmp_path / "p.csv"
    write_csv(plain, rec, metadata=False)
    assert plain.read_text().startswith("wavenumber_cm-1,absorbance\n")
    data = np.loadtxt(plain, delimiter=",", skiprows=1)  # another reader
    np.testing.assert_allclose(data[:, 0], rec.x, rtol=1e-9)


@pytest.mark.parametrize(
    ("text", "x", "y", "units"),
    [
        ("wavenumber_cm-1,absorbance\n1000,0.5\n1002,0.25\n", [1000, 1002], [0.5, 0.25],
         "absorbance"),
        ("wavelength_um,transmittance\n10,0.9\n5,0.8\n", [1000, 2000], [0.9, 0.8],
         "transmittance"),
        ("wavelength_um;transmittance\n10;0,9\n5;0,8\n", [1000, 2000], [0.9, 0.8],
         "transmittance"),
        ("Wavelength (nm)\t%T\n10000\t90\n5000\t80\n", [1000, 2000], [90, 80],
         "percent_transmittance"),
        ("# title: caffeine\n# cas: 58-08-2\n\"Wavenumber (cm-1)\",\"Absorbance\"\n"
         "3000,0.1\n1000,0.3\n", [1000, 3000], [0.3, 0.1], "absorbance"),
        ("\ufeffwavenumber,counts\n1,5\n2,6\n", [1, 2], [5, 6], "counts"),
        ("wavenumber_cm-1,percent_transmittance\n1,99\n2,98\n", [1, 2], [99, 98],
         "percent_transmittance"),
    ],
)  # fmt: skip
def test_csv_dialects(tmp_path: Path, text: str, x: list, y: list, units: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    rec = read_spectrum(path)
    np.testing.assert_allclose(rec.x, x)
    np.testing.assert_allclose(rec.y, y)
    assert rec.y_units == units


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("1000,0.5\n1002,0.2\n", 1, "no header"),
        ("wavenumber,absorbance,extra\n1,2,3\n", 1, "3 columns"),
        ("frequency_hz,absorbance\n1,2\n2,3\n", 1, "names no wavenumber"),
        ("wavenumber,loudness\n1,2\n2,3\n", 1, "names no known ordinate"),
        ("wavenumber,absorbance\n1,2\n2,abc\n", 3, "non-numeric"),
        ("wavenumber,absorbance\n1,2\n2,nan\n", 3, "NaN"),
        ("wavenumber,absorbance\n1,2\n2\n", 3, "expected 2 columns"),
        ("wavenumber,absorbance\n1,2\n1,3\n", 1, "strictly increasing"),
        ("wavenumber,absorbance\n1,2\n", 1, "at least 2"),
        ("wavelength_um,absorbance\n0,2\n1,3\n", 1, "positive"),
        ("justtext\n", 1, "two columns"),
    ],
)
def test_bad_csv_names_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = tmp_path / "b.csv"
    path.write_text(text)
    with pytest.raises(SpectrumFileError, match=reason) as info:
        read_csv(path)
    assert info.value.line == line and info.value.path == str(path)


# -- JSON records ------------------------------------------------------------------------------


def _json_obj(name: str = "Cocaine", n: int = 5) -> dict:
    return {
        "name": name,
        "aliases": ["benzoylmethylecgonine", "coke"],
        "formula": "C17H21NO4",
        "category": "stimulants",
        "form": "HCl",
        "inchikey": "ZPUCINDJVBIVPJ-LJISPDSOSA-N",
        "spectrum": {"firstX": 600.0, "lastX": 4000.0, "y": [100.0, 50, 10, 50, 100][:n]},
    }


def test_json_single_object_and_list(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(_json_obj()))
    rec = read_spectrum(one)
    assert rec.title == "Cocaine" and rec.y_units == "percent_transmittance"
    np.testing.assert_allclose(rec.x, np.linspace(600, 4000, 5))
    np.testing.assert_allclose(rec.absorbance(), [0, np.log10(2), 1, np.log10(2), 0])
    assert rec.metadata["aliases"] == "benzoylmethylecgonine; coke"
    for key in ("formula", "category", "form", "inchikey", "name"):
        assert rec.metadata[key]
    many = tmp_path / "many.json"
    many.write_text(json.dumps([_json_obj("A"), _json_obj("B")]))
    assert [r.title for r in read_json_records(many)] == ["A", "B"]
    with pytest.raises(SpectrumFileError, match="2 records"):
        read_spectrum(many)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([], "no records"),
        ([1], "not a JSON object"),
        ({"spectrum": {}}, "no 'name'"),
        ({"name": "x"}, "no 'spectrum'"),
        ({"name": "x", "spectrum": {"firstX": "a", "lastX": 2, "y": [1, 2]}}, "numbers"),
        ({"name": "x", "spectrum": {"firstX": 5, "lastX": 2, "y": [1, 2]}}, "firstX < lastX"),
        ({"name": "x", "spectrum": {"firstX": 1, "lastX": 2, "y": [1]}}, "list of 2"),
        ({"name": "x", "spectrum": {"firstX": 1, "lastX": 2, "y": [1, "z"]}}, "non-numeric"),
        ({"name": "x", "spectrum": {"firstX": 1, "lastX": 2, "y": [1, None]}}, "non-numeric"),
    ],
)
def test_bad_json_records(tmp_path: Path, obj: object, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(SpectrumFileError, match=reason):
        read_json_records(path)


def test_invalid_json_and_nan_tokens(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n "name": "x",\n oops}')
    with pytest.raises(SpectrumFileError, match="invalid JSON") as info:
        read_json_records(path)
    assert info.value.line == 3
    path.write_text('{"name": "x", "spectrum": {"firstX": 1, "lastX": 2, "y": [1, NaN]}}')
    with pytest.raises(SpectrumFileError, match="NaN"):
        read_json_records(path)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/enfsi-atr not present")
def test_reads_every_shared_enfsi_record() -> None:
    files = sorted(SHARED.glob("*.json"))
    assert len(files) == 69
    for f in files:
        rec = read_spectrum(f)
        assert len(rec) == 460 and rec.y_units == "percent_transmittance"
        assert rec.metadata["category"] and rec.metadata["name"] == rec.title
        assert 300 < rec.x[0] < rec.x[-1] <= 4010


# -- dispatch ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".jdx", ".dx", ".jcamp", ".csv"])
def test_write_and_read_by_extension(tmp_path: Path, ext: str) -> None:
    rec = _rec()
    path = tmp_path / f"s{ext}"
    write_spectrum(path, rec)
    back = read_spectrum(path)
    np.testing.assert_allclose(back.y, rec.y, rtol=1e-7)
    assert path.read_text().startswith("##TITLE" if ext != ".csv" else "# title")


def test_unknown_extension_is_sniffed_on_read_and_refused_on_write(tmp_path: Path) -> None:
    rec = _rec()
    jdx, csv = tmp_path / "a.jdx", tmp_path / "a.csv"
    write_spectrum(jdx, rec)
    write_spectrum(csv, rec)
    for src in (jdx, csv):
        odd = tmp_path / f"{src.stem}{src.suffix}.spectrum"
        odd.write_text(src.read_text())
        np.testing.assert_allclose(read_spectrum(odd).y, rec.y, rtol=1e-7)
    with pytest.raises(SpectrumFileError, match="unknown extension"):
        write_spectrum(tmp_path / "a.xlsx", rec)


def test_write_failure_is_a_spectrum_file_error_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="cannot write"):
        write_spectrum(tmp_path / "missing-dir" / "a.jdx", _rec())
    assert not (tmp_path / "missing-dir").exists()
