"""JCAMP-DX reading and writing: hand-written files of every form, hostile files, and the
``jcamp`` package as an independent reader."""

from __future__ import annotations

import io
from pathlib import Path

import jcamp
import numpy as np
import pytest
from paths import TEST_DATA

from spectra_io import (
    MAX_FILE_BYTES,
    SpectrumRecord,
    jcamp_text,
    read_jcamp,
    read_spectrum,
    write_jcamp,
)
from spectra_io.errors import SpectraEdgeError, SpectrumFileError

DATA = TEST_DATA / "jcamp"
HAND_Y = np.array([10, 12, 15, 15, 15, 15, 20, -5, -5, 0, 3, 3]) * 0.001
HAND_X = np.arange(4000, 3976, -2, dtype=float)


def independent(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as the ``jcamp`` package reads them, sorted by x; first XYDATA child of LINKs."""
    with open(path, "rb") as fh:
        d = jcamp.read(fh)
    if "children" in d:
        d = next(c for c in d["children"] if "xydata" in c)
    x, y = np.asarray(d["x"], float), np.asarray(d["y"], float)
    order = np.argsort(x)
    return x[order], y[order]


@pytest.mark.parametrize(
    "name",
    [
        "hand_affn",
        "hand_pac",
        "hand_sqz",
        "hand_dif",
        "hand_dif_no_ycheck",
        "hand_difdup",
        "hand_difdup_oneline",
    ],
)
def test_hand_written_forms_decode_to_the_same_spectrum(name: str) -> None:
    rec = read_jcamp(DATA / f"{name}.jdx")
    assert rec.y_units == "absorbance"
    np.testing.assert_allclose(rec.x, HAND_X[::-1])  # decreasing in the file, increasing here
    np.testing.assert_allclose(rec.y, HAND_Y[::-1], atol=1e-12)
    assert rec.metadata["owner"] == "public domain"


@pytest.mark.parametrize(
    "name",
    [
        "hand_affn",
        "hand_pac",
        "hand_sqz",
        "hand_difdup",
        "gen_affn",
        "gen_pac",
        "gen_sqz",
        "gen_dif",
        "link_peaks_then_spectrum",
        "percent_transmittance",
    ],
)
def test_agrees_with_the_jcamp_package(name: str) -> None:
    # the jcamp package misreads multi-digit DUP counts and '$$' comments in data lines,
    # so gen_difdup and hand_dif are checked against the test encoder only
    x, y = independent(DATA / f"{name}.jdx")
    rec = read_jcamp(DATA / f"{name}.jdx")
    np.testing.assert_allclose(rec.x, x)
    np.testing.assert_allclose(rec.y, y, atol=1e-12)


def test_xypoints_in_micrometres_become_increasing_wavenumbers() -> None:
    rec = read_jcamp(DATA / "xypoints_micrometers.jdx")
    um = np.array([2.5, 3.0, 3.5, 4.0, 5.0, 10.0])
    t = np.array([0.95, 0.90, 0.80, 0.40, 0.99, 0.98])
    np.testing.assert_allclose(rec.x, (1e4 / um)[::-1])
    np.testing.assert_allclose(rec.y, t[::-1])
    assert rec.y_units == "transmittance"
    assert rec.metadata["cas"] == "64-17-5"
    assert rec.metadata["formula"] == "C 2 H 6 O"
    assert rec.metadata["names"] == "ethanol"
    x, _ = independent(DATA / "xypoints_micrometers.jdx")
    np.testing.assert_allclose(np.sort(1e4 / rec.x), x)


def test_nanometres_are_converted() -> None:
    rec = read_jcamp(DATA / "nanometers_decreasing.jdx")
    nm = np.linspace(10000, 5000, 6)
    np.testing.assert_allclose(rec.x, 1e7 / nm)
    np.testing.assert_allclose(rec.y, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])


def test_percent_values_under_transmittance_are_recognised() -> None:
    rec = read_jcamp(DATA / "percent_transmittance.jdx")
    assert rec.y_units == "percent_transmittance"
    assert rec.absorbance()[2] == pytest.approx(-np.log10(0.5))


def test_link_file_gives_the_first_full_spectrum() -> None:
    rec = read_jcamp(DATA / "link_peaks_then_spectrum.jdx")
    assert rec.title == "the spectrum"
    np.testing.assert_allclose(rec.y, [0.1, 0.5, 0.9, 0.5, 0.1])


def test_peak_table_is_skipped_with_a_clear_message() -> None:
    with pytest.raises(SpectrumFileError, match=r"PEAK TABLE.*not a full spectrum"):
        read_jcamp(DATA / "peak_table_only.jdx")


@pytest.mark.parametrize(
    ("name", "line", "reason"),
    [
        ("bad_truncated_noend", 15, "no ##END"),
        ("bad_short", 16, "truncated XYDATA"),
        ("bad_nonnumeric", 16, "unexpected character 'x'"),
        ("bad_missing_value", 16, "missing value"),
        ("bad_units_hz", 6, "XUNITS=HZ is not a wavenumber"),
        ("bad_dup_bomb", 16, "exceeds the point limit"),
        ("bad_xcheck", 17, "X-check failed"),
        ("bad_ycheck", 17, "Y-check failed"),
        ("bad_firsty", 14, "wrong YFACTOR"),
    ],
)
def test_bad_files_raise_with_file_line_and_reason(name: str, line: int, reason: str) -> None:
    path = DATA / f"{name}.jdx"
    with pytest.raises(SpectrumFileError) as info:
        read_jcamp(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert reason in info.value.reason
    assert isinstance(info.value, SpectraEdgeError) and isinstance(info.value, ValueError)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.jdx"
    path.write_text(text)
    return path


HEAD = "##TITLE=t\n##XUNITS=1/CM\n##YUNITS=ABSORBANCE\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("hello\n", "not JCAMP-DX"),
        (HEAD + "##FIRSTX=1\n##LASTX=2\n##NPOINTS=2\n##END=\n", "no XYDATA"),
        (HEAD + "##FIRSTX=abc\n##LASTX=2\n##NPOINTS=2\n##XYDATA=(X++(Y..Y))\n1 1 1\n##END=\n",
         "not a number"),
        (HEAD + "##LASTX=2\n##NPOINTS=2\n##XYDATA=(X++(Y..Y))\n1 1 1\n##END=\n",
         "missing required ##FIRSTX"),
        (HEAD + "##FIRSTX=1\n##LASTX=2\n##NPOINTS=1e12\n##XYDATA=(X++(Y..Y))\n1 1\n##END=\n",
         "NPOINTS"),
        (HEAD + "##FIRSTX=1\n##LASTX=2\n##NPOINTS=2\n##XYDATA=(X++(R..R))\n1 1 1\n##END=\n",
         "unsupported XYDATA"),
        (HEAD + "##FIRSTX=1\n##LASTX=2\n##NPOINTS=2\n##XYDATA=(X++(Y..Y))\n1 1 9E+999\n##END=\n",
         "infinity"),
        (HEAD.replace("ABSORBANCE", "PARSECS") + "##FIRSTX=1\n##LASTX=2\n##NPOINTS=2\n"
         "##XYDATA=(X++(Y..Y))\n1 1 1\n##END=\n", "YUNITS=PARSECS"),
        (HEAD + "##XYPOINTS=(XY..XY)\n1, 1; 2\n##END=\n", "odd number"),
        (HEAD + "##XYPOINTS=(XY..XY)\n1, 1; 1, 2\n##END=\n", "strictly increasing"),
        (HEAD + "##XYPOINTS=(XY..XY)\n1, 1; 2, nan\n##END=\n", "NaN"),
        ("##TITLE=t\n##XUNITS=MICROMETERS\n##YUNITS=ABSORBANCE\n##XYPOINTS=(XY..XY)\n"
         "0, 1; 2, 1\n##END=\n", "positive"),
        ("##TITLE=t\n##DATA TYPE=NMR\n##NTUPLES=NMR SPECTRUM\n##END NTUPLES=\n##END=\n",
         "NTUPLES"),
        ("##TITLE=t\n##NOEQUALS\n##END=\n", "without '='"),
    ],
)  # fmt: skip
def test_hostile_text_raises_spectrum_file_error(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(SpectrumFileError, match=reason):
        read_jcamp(_write(tmp_path, text))


def test_missing_and_binary_and_enormous_files(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="no such file"):
        read_jcamp(tmp_path / "absent.jdx")
    binary = tmp_path / "bin.jdx"
    binary.write_bytes(b"##TITLE=x\x00\x01\x02")
    with pytest.raises(SpectrumFileError, match="binary"):
        read_jcamp(binary)
    huge = tmp_path / "huge.jdx"
    with open(huge, "wb") as fh:  # sparse: nothing is really written
        fh.seek(MAX_FILE_BYTES + 1)
        fh.write(b"\n")
    with pytest.raises(SpectrumFileError, match="limit"):
        read_jcamp(huge)
    with pytest.raises(SpectrumFileError, match="not a regular file"):
        read_jcamp(tmp_path)


def test_every_truncation_of_a_compressed_file_fails_cleanly(tmp_path: Path) -> None:
    text = (DATA / "gen_difdup.jdx").read_text()
    data_start = text.index("##XYDATA")
    path = tmp_path / "cut.jdx"
    for cut in range(data_start, len(text) - 2, 7):
        path.write_text(text[:cut])
        with pytest.raises(SpectrumFileError):
            read_jcamp(path)


# -- writer ------------------------------------------------------------------------------------


def _record(units: str = "absorbance") -> SpectrumRecord:
    x = np.linspace(650.0, 4000.0, 838)
    y = 0.02 + 0.9 * np.exp(-(((x - 1715) / 12) ** 2)) + 0.3 * np.exp(-(((x - 2950) / 30) ** 2))
    meta = {
        "cas": "58-08-2",
        "formula": "C8H10N4O2",
        "names": "caffeine; guaranine",
        "category": "cutting agent",
        "origin": "unit test",
        "owner": "public domain",
    }
    if units == "percent_transmittance":
        y = 100 * 10**-y
    return SpectrumRecord(x, y, units, "caffeine (synthetic)", meta)


def test_written_file_has_the_required_labelled_data_records() -> None:
    text = jcamp_text(_record())
    labels = [ln.split("=", 1)[0] for ln in text.splitlines() if ln.startswith("##")]
    for required in ("##TITLE", "##JCAMP-DX", "##DATA TYPE", "##XUNITS", "##YUNITS",
                     "##FIRSTX", "##LASTX", "##NPOINTS", "##XFACTOR", "##YFACTOR", "##FIRSTY",
                     "##XYDATA", "##END"):  # fmt: skip
        assert required in labels
    assert labels[0] == "##TITLE" and labels[-1] == "##END"
    assert "##JCAMP-DX=5.01" in text and "##DATA TYPE=INFRARED SPECTRUM" in text
    assert "##XYDATA=(X++(Y..Y))" in text
    assert max(len(ln) for ln in text.splitlines()) <= 80


@pytest.mark.parametrize("units", ["absorbance", "percent_transmittance", "counts"])
def test_round_trip_through_both_readers(tmp_path: Path, units: str) -> None:
    rec = _record(units)
    path = tmp_path / "rt.jdx"
    write_jcamp(path, rec)
    back = read_spectrum(path)
    expected_y = rec.y / 100 if units == "percent_transmittance" else rec.y
    np.testing.assert_allclose(back.x, rec.x, rtol=1e-12)
    np.testing.assert_allclose(back.y, expected_y, rtol=1e-7, atol=1e-9 * np.max(expected_y))
    assert back.title == rec.title
    for key in ("cas", "formula", "names", "category", "origin", "owner"):
        assert back.metadata[key] == rec.metadata[key]
    x, y = independent(path)
    np.testing.assert_allclose(x, rec.x, rtol=1e-9)
    np.testing.assert_allclose(y, expected_y, rtol=1e-7, atol=1e-9 * np.max(expected_y))


def test_uneven_spacing_is_written_as_xypoints(tmp_path: Path) -> None:
    x = np.array([700.0, 701.0, 703.5, 710.0, 800.0])
    rec = SpectrumRecord(x, np.array([0.1, 0.2, 0.3, 0.2, 0.1]), "absorbance", "uneven")
    path = tmp_path / "u.jdx"
    write_jcamp(path, rec)
    assert "##XYPOINTS=(XY..XY)" in path.read_text()
    back = read_jcamp(path)
    np.testing.assert_allclose(back.x, x)
    np.testing.assert_allclose(back.y, rec.y, rtol=1e-8)
    jx, jy = independent(path)
    np.testing.assert_allclose(jx, x)
    np.testing.assert_allclose(jy, rec.y, rtol=1e-8)


def test_header_values_cannot_inject_labels(tmp_path: Path) -> None:
    rec = SpectrumRecord(
        np.array([1.0, 2.0]), np.array([1.0, 2.0]), "absorbance", "evil\n##END=\n##TITLE=x",
        {"note": "a $$ b ## c"},
    )  # fmt: skip
    path = tmp_path / "e.jdx"
    write_jcamp(path, rec)
    back = read_jcamp(path)
    assert "##" not in back.title and back.metadata["note"] == "a $ b # c"


def test_jcamp_package_reads_our_output_from_a_stream() -> None:
    d = jcamp.read(io.StringIO(jcamp_text(_record())))
    assert d["npoints"] == 838 and d["xunits"] == "1/CM"


def test_instrument_style_file_with_blanks_comments_and_continuations() -> None:
    rec = read_jcamp(DATA / "hand_instrument_style.jdx")
    expected = [9876, 9870, 9850, 9800, 9700, 0, 9500, 9600, 9700, 9750, 9800]
    np.testing.assert_allclose(rec.x, np.arange(1000.0, 1011.0))
    np.testing.assert_allclose(rec.y, np.array(expected[::-1]) * 1e-4, atol=1e-12)
    assert rec.y_units == "transmittance"
    assert rec.metadata["instrument_parameters"] == (
        "X: 1010.00,1000.00 cm-1; 16 scans resol 4.00 cm-1; apod strong"
    )


@pytest.mark.parametrize("name", ["gen_difdup", "hand_instrument_style", "xypoints_micrometers"])
def test_mutated_files_never_raise_anything_else(tmp_path: Path, name: str) -> None:
    """Random character edits: either a valid record or SpectrumFileError, nothing else."""
    rng = np.random.default_rng(1234)
    original = (DATA / f"{name}.jdx").read_bytes()
    alphabet = b"0123456789+-.,;% @AaJjSsZz?#$=\n\x00\xff E"
    path = tmp_path / "m.jdx"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        data = bytearray(original)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(data)))
            op = int(rng.integers(0, 3))
            c = alphabet[int(rng.integers(0, len(alphabet)))]
            if op == 0:
                data[i] = c
            elif op == 1:
                data.insert(i, c)
            else:
                del data[i]
        path.write_bytes(bytes(data))
        try:
            rec = read_jcamp(path)
        except SpectrumFileError:
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
            assert np.all(np.isfinite(rec.y)) and np.all(np.diff(rec.x) > 0)
    assert outcomes["error"] > 0 and sum(outcomes.values()) == 300


@pytest.mark.parametrize(
    ("units", "scale"),
    [("1/CM", 1.0), ("cm-1", 1.0), ("µm", 1e4), ("MICRONS", 1e4), ("nm", 1e7), ("NANOMETERS", 1e7)],
)
def test_x_unit_spellings(tmp_path: Path, units: str, scale: float) -> None:
    text = f"##TITLE=u\n##XUNITS={units}\n##YUNITS=ABSORBANCE\n"
    text += "##XYPOINTS=(XY..XY)\n2, 1; 4, 3\n##END=\n"
    rec = read_jcamp(_write(tmp_path, text))
    expected = np.array([2.0, 4.0]) if scale == 1.0 else np.array([scale / 4, scale / 2])
    np.testing.assert_allclose(rec.x, expected)
    np.testing.assert_allclose(rec.y, [1.0, 3.0] if scale == 1.0 else [3.0, 1.0])
