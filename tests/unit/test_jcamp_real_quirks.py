"""What real JCAMP-DX files do that the spec does not: read within a tolerance, with a warning.

- R. S. McDonald's test disk ``jtpolysd.jdx`` (committed, public domain): its YFACTOR has a typo,
  so FIRSTY is 0.18 % off the first decoded ordinate;
- jcamp-dx.org's ``SPECFILE.DX`` (not committed, see tests/data/jcamp/public/PROVENANCE.md;
  reproduced by ``hand_closing_placeholder.jdx``): abscissae that drift by up to a point from
  the FIRSTX/LASTX grid, and a closing line of an abscissa and a placeholder 0.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from paths import TEST_DATA

from spectra_io import SpectrumRecord, read_jcamp
from spectra_io.errors import SpectrumFileError, SpectrumFileWarning

DATA = TEST_DATA / "jcamp"
PUBLIC = DATA / "public"
HAND_Y = np.array([10, 12, 15, 15, 15, 15, 20, -5, -5, 0, 3, 3]) * 0.001
HAND_X = np.arange(4000, 3976, -2, dtype=float)


def _read_quietly(path: Path) -> tuple[SpectrumRecord, list[SpectrumFileWarning]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_jcamp(path)
    return rec, [w.message for w in caught if isinstance(w.message, SpectrumFileWarning)]


def test_mcdonald_difdup_file_is_read_with_a_firsty_warning() -> None:
    with pytest.warns(SpectrumFileWarning, match=r"FIRSTY=0\.981633.*0\.18%") as caught:
        rec = read_jcamp(PUBLIC / "jtpolysd.jdx")
    warning = caught[0].message
    assert isinstance(warning, SpectrumFileWarning)
    assert warning.line == 18 and warning.path == str(PUBLIC / "jtpolysd.jdx")
    assert len(rec) == 1844 and rec.y_units == "transmittance"


def test_mcdonald_difdup_agrees_with_the_fix_form_once_the_yfactor_typo_is_taken_out() -> None:
    difdup, _ = _read_quietly(PUBLIC / "jtpolysd.jdx")
    fix, fix_warnings = _read_quietly(PUBLIC / "jtpolys.jdx")
    assert fix_warnings == []  # the FIX file's FIRSTY matches its own YFACTOR
    np.testing.assert_allclose(difdup.x, fix.x, rtol=1e-7)  # LASTX: 4002.284 vs 4002.28378
    ratio = 2.3884185791e-09 / 2.384185791e-09
    np.testing.assert_allclose(difdup.y / ratio, fix.y, rtol=1e-12)


def _with_firsty(tmp_path: Path, value: str) -> Path:
    """Eight points of about 1.0 in units of 1e-6, and the given FIRSTY (the first is 1.0)."""
    ys = " ".join(str(1_000_000 + 250 * i) for i in range(8))
    path = tmp_path / "firsty.jdx"
    path.write_text(
        "##TITLE=firsty\n##JCAMP-DX=4.24\n##XUNITS=1/CM\n##YUNITS=ABSORBANCE\n"
        "##XFACTOR=1\n##YFACTOR=0.000001\n##FIRSTX=1000\n##LASTX=1014\n##NPOINTS=8\n"
        f"##FIRSTY={value}\n##XYDATA=(X++(Y..Y))\n1000 {ys}\n##END=\n"
    )
    return path


def test_firsty_within_rounding_is_silent(tmp_path: Path) -> None:
    _, caught = _read_quietly(_with_firsty(tmp_path, "1.0009"))
    assert caught == []


@pytest.mark.parametrize(("value", "percent"), [("1.005", "0.50%"), ("0.991", "0.90%")])
def test_firsty_within_one_percent_warns_and_reads(
    tmp_path: Path, value: str, percent: str
) -> None:
    rec, caught = _read_quietly(_with_firsty(tmp_path, value))
    assert len(caught) == 1 and percent in caught[0].reason and caught[0].line == 10
    assert rec.y[0] == 1.0


@pytest.mark.parametrize("value", ["1.02", "0.98", "10", "0.1", "-1"])
def test_firsty_beyond_the_tolerance_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpectrumFileError, match="wrong YFACTOR") as info:
        read_jcamp(_with_firsty(tmp_path, value))
    assert info.value.line == 10


def test_drifting_abscissae_and_closing_placeholder_are_read() -> None:
    path = DATA / "hand_closing_placeholder.jdx"
    with pytest.warns(SpectrumFileWarning, match="closing Y-check line holds 0") as caught:
        rec = read_jcamp(path)
    assert caught[0].message.line == 18
    np.testing.assert_allclose(rec.x, HAND_X[::-1])
    np.testing.assert_allclose(rec.y, HAND_Y[::-1], atol=1e-12)


def _hand_dif(tmp_path: Path, second: str, closing: str) -> Path:
    text = (DATA / "hand_closing_placeholder.jdx").read_text()
    text = text.replace("3986.2B0k5%NL%", second).replace("3978@", closing)
    path = tmp_path / "dif.jdx"
    path.write_text(text)
    return path


def test_a_closing_line_with_a_wrong_nonzero_check_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="Y-check failed") as info:
        read_jcamp(_hand_dif(tmp_path, "3986.2B0k5%NL%", "3978D"))
    assert info.value.line == 18


def test_a_closing_line_with_the_right_check_is_silent(tmp_path: Path) -> None:
    rec, caught = _read_quietly(_hand_dif(tmp_path, "3986.2B0k5%NL%", "3978C"))
    assert caught == []
    np.testing.assert_allclose(rec.y, HAND_Y[::-1], atol=1e-12)


def test_a_drifting_line_that_does_not_repeat_the_value_is_a_new_point(tmp_path: Path) -> None:
    """Abscissa nearer the next point and a different first value: a writer without Y-checks
    (the table then has one value too many here, and says so)."""
    with pytest.raises(SpectrumFileError, match="more ordinates than NPOINTS"):
        read_jcamp(_hand_dif(tmp_path, "3986.2A9J%NL%", "3978@"))


def test_a_wrong_check_at_the_checked_abscissa_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(SpectrumFileError, match="Y-check failed") as info:
        read_jcamp(_hand_dif(tmp_path, "3988B1k6%NL%", "3978@"))
    assert info.value.line == 17
