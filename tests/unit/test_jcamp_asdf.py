"""ASDF-compressed JCAMP-DX: an independent encoder written from the spec, and the reader on it.

The encoder below follows JCAMP-DX 4.24 (McDonald & Wilks 1988), section "ASDF": SQZ, DIF and
DUP pseudo-digits, and the Y-value check (each DIF line after the first repeats the last
ordinate of the previous line). It shares no code with ``spectra_io``.
Run this file as a script to regenerate ``tests/data/jcamp/gen_*.jdx``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from paths import TEST_DATA

from spectra_io import read_jcamp
from spectra_io.errors import SpectrumFileError

DATA = TEST_DATA / "jcamp"
FORMS = ("affn", "pac", "sqz", "dif", "difdup")

_SQZ_POS, _SQZ_NEG = "@ABCDEFGHI", "@abcdefghi"
_DIF_POS, _DIF_NEG = "%JKLMNOPQR", "%jklmnopqr"
_DUP = "?STUVWXYZs"  # index = repeat count of the first digit (0 unused)


def _lead(v: int, pos: str, neg: str) -> str:
    s = str(abs(v))
    return (neg if v < 0 else pos)[int(s[0])] + s[1:]


def sqz(v: int) -> str:
    return _lead(v, _SQZ_POS, _SQZ_NEG)


def dif(v: int) -> str:
    return _lead(v, _DIF_POS, _DIF_NEG)


def dup(n: int) -> str:
    s = str(n)
    return _DUP[int(s[0])] + s[1:]


def encode_xydata(
    xs: list[int], ys: list[int], form: str, width: int = 80, final_check: bool = False
) -> list[str]:
    """Data lines of ##XYDATA=(X++(Y..Y)) in ``form``; ``xs`` are the abscissa labels."""
    lines: list[str] = []
    n = len(ys)
    i = 0
    difform = form in ("dif", "difdup")
    while i < n:
        start = i - 1 if (difform and lines) else i
        if form == "affn":
            line = f"{xs[start]} {ys[start]}"
        elif form == "pac":
            line = f"{xs[start]}{ys[start]:+d}"
        else:
            line = f"{xs[start]}{sqz(ys[start])}"
        j = start + 1
        while j < n:
            if form == "affn":
                tok, step = f" {ys[j]}", 1
            elif form == "pac":
                tok, step = f"{ys[j]:+d}", 1
            elif form == "sqz":
                tok, step = sqz(ys[j]), 1
            else:
                d = ys[j] - ys[j - 1]
                run = 1
                if form == "difdup":
                    while j + run < n and ys[j + run] - ys[j + run - 1] == d:
                        run += 1
                tok, step = dif(d) + (dup(run) if run > 1 else ""), run
            if len(line) + len(tok) > width:
                break
            line += tok
            j += step
        lines.append(line)
        i = j
    if final_check and difform:
        lines.append(f"{xs[n - 1]}{sqz(ys[n - 1])}")
    return lines


def synthetic_counts() -> tuple[list[int], list[int]]:
    """A deterministic IR-like spectrum, 4000 -> 652 cm^-1 step -4, with flat runs (for DUP)."""
    x = np.arange(4000, 650, -4)
    bands = [(2950, 0.5, 15), (1715, 1.0, 10), (1600, 0.4, 8), (1250, 0.7, 12), (1050, 0.6, 9)]
    a = sum(h * 20**2 / ((x - c) ** 2 + w**2) / 20**2 * w**2 for c, h, w in bands)
    y = np.rint(a * 40000 - 2000).astype(int)
    y[(x > 1800) & (x < 2600)] = -2000  # flat baseline: DUP runs
    return [int(v) for v in x], [int(v) for v in y]


def jcamp_file(form: str) -> str:
    xs, ys = synthetic_counts()
    header = [
        f"##TITLE=generated {form.upper()} (spectra-edge test encoder)",
        "##JCAMP-DX=4.24",
        "##DATA TYPE=INFRARED SPECTRUM",
        "##ORIGIN=spectra-edge tests/test_jcamp_asdf.py",
        "##OWNER=public domain",
        "##XUNITS=1/CM",
        "##YUNITS=ABSORBANCE",
        "##XFACTOR=1",
        "##YFACTOR=0.00001",
        f"##FIRSTX={xs[0]}",
        f"##LASTX={xs[-1]}",
        f"##NPOINTS={len(ys)}",
        f"##FIRSTY={ys[0] * 0.00001:.5f}",
        "##XYDATA=(X++(Y..Y))",
    ]
    body = encode_xydata(xs, ys, form, final_check=form == "difdup")
    return "\n".join([*header, *body, "##END="]) + "\n"


# -- the encoder itself, against hand-worked values from the spec's rules --------------------


def test_encoder_digits_follow_the_spec_tables() -> None:
    assert [sqz(v) for v in (0, 7, -7, 1234, -1234)] == ["@", "G", "g", "A234", "a234"]
    assert [dif(v) for v in (0, 9, -9, 25, -25)] == ["%", "R", "r", "K5", "k5"]
    assert [dup(n) for n in (2, 9, 10, 123)] == ["T", "s", "S0", "S23"]


def test_encoder_reproduces_the_hand_written_files() -> None:
    xs = list(range(4000, 3976, -2))
    ys = [10, 12, 15, 15, 15, 15, 20, -5, -5, 0, 3, 3]
    assert encode_xydata(xs, ys, "difdup")[0] == "4000A0KL%UNk5%NL%"
    assert encode_xydata(xs, ys, "sqz")[0] == "4000A0A2A5A5A5A5B0ee@CC"
    hand = (DATA / "hand_difdup_oneline.jdx").read_text().splitlines()
    assert "4000A0KL%UNk5%NL%" in hand


# -- the reader on encoded data ----------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_generated_files_are_the_encoder_output(form: str) -> None:
    assert (DATA / f"gen_{form}.jdx").read_text() == jcamp_file(form)


@pytest.mark.parametrize("form", FORMS)
def test_reader_decodes_every_form_exactly(form: str) -> None:
    xs, ys = synthetic_counts()
    rec = read_jcamp(DATA / f"gen_{form}.jdx")
    assert rec.y_units == "absorbance"
    np.testing.assert_allclose(rec.x, np.asarray(xs[::-1], dtype=float))
    np.testing.assert_allclose(rec.y, np.asarray(ys[::-1]) * 1e-5, rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", ("dif", "difdup"))
def test_compressed_forms_really_compress(form: str) -> None:
    text = (DATA / f"gen_{form}.jdx").read_text()
    assert len(text) < 0.6 * len((DATA / "gen_affn.jdx").read_text())
    if form == "difdup":
        assert any(c in text.split("##XYDATA")[1] for c in "STUVWXYZs")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("form", FORMS)
def test_random_round_trips(tmp_path: Path, form: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    steps = rng.choice([0, 0, 0, 1, -1, 37, -512, 9999], size=n)
    ys = [int(v) for v in np.cumsum(steps) + int(rng.integers(-99999, 99999))]
    xs = [1000 + 2 * i for i in range(n)]
    text = "\n".join(
        [
            "##TITLE=random",
            "##JCAMP-DX=4.24",
            "##XUNITS=1/CM",
            "##YUNITS=ABSORBANCE",
            "##FIRSTX=1000",
            f"##LASTX={xs[-1]}",
            f"##NPOINTS={n}",
            "##XYDATA=(X++(Y..Y))",
            *encode_xydata(xs, ys, form, width=int(rng.integers(20, 81))),
            "##END=",
        ]
    )
    path = tmp_path / "r.jdx"
    path.write_text(text + "\n")
    np.testing.assert_array_equal(read_jcamp(path).y, np.asarray(ys, dtype=float))


def test_dif_line_with_wrong_check_value_is_refused(tmp_path: Path) -> None:
    xs = list(range(100, 160))
    ys = [i * i for i in range(60)]
    lines = encode_xydata(xs, ys, "dif", width=30)
    assert len(lines) > 2
    # the second line is "<x><SQZ check value><DIFs...>": replace its check value
    x_label = str(xs[int(lines[1][:3]) - 100])
    rest = lines[1][len(x_label) :]
    i = 1
    while rest[i].isdigit():
        i += 1
    bad = x_label + sqz(123456789) + rest[i:]
    header = ["##TITLE=t", "##XUNITS=1/CM", "##YUNITS=ABSORBANCE", "##FIRSTX=100"]
    header += ["##LASTX=159", "##NPOINTS=60", "##XYDATA=(X++(Y..Y))"]
    path = tmp_path / "bad.jdx"
    path.write_text("\n".join([*header, lines[0], bad, *lines[2:], "##END="]) + "\n")
    with pytest.raises(SpectrumFileError, match="Y-check") as info:
        read_jcamp(path)
    assert info.value.line == 9


if __name__ == "__main__":  # regenerate the committed files
    for f in FORMS:
        (DATA / f"gen_{f}.jdx").write_text(jcamp_file(f))
    sys.exit(0)
