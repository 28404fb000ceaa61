"""Every reader's limits: checked before parsing or while streaming, each a clean
SpectrumFileError naming the file (and line) — and what the limits must not refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spectra_io import SpectrumRecord, read_csv, read_jcamp, read_json_records, read_spectrum
from spectra_io.asdf import TooManyValues, expand, tokenize
from spectra_io.errors import SpectrumFileError
from spectra_io.jcamp_read import MAX_BLOCK_DEPTH, MAX_META_CHARS, MAX_META_LABELS
from spectra_io.json_records import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_KEYS
from spectra_io.textfile import MAX_LINE_CHARS, MAX_LINES, TextFile

HEAD = "##TITLE=t\n##XUNITS=1/CM\n##YUNITS=ABSORBANCE\n"
TWO_POINTS = "##FIRSTX=1\n##LASTX=2\n##NPOINTS=2\n##XYDATA=(X++(Y..Y))\n1 1 1\n"


def _write(tmp_path: Path, text: str, name: str = "t.jdx") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the text layer ----------------------------------------------------------------------


def test_too_many_lines_are_refused_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + TWO_POINTS + "\n" * MAX_LINES + "##END=\n")
    with pytest.raises(SpectrumFileError, match=f"more than {MAX_LINES} lines") as info:
        TextFile(path)
    assert info.value.line is None  # refused by the pre-check, before any line was parsed


def test_a_line_longer_than_the_limit_is_refused_with_its_number(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "$$" + "c" * MAX_LINE_CHARS + "\n" + TWO_POINTS + "##END=\n")
    with pytest.raises(SpectrumFileError, match="line longer than") as info:
        read_jcamp(path)
    assert info.value.line == 4


def test_line_breaks_and_numbers_are_those_of_splitlines(tmp_path: Path) -> None:
    text = "a\r\nb\rc\x0cd\n\x0c\ne\u2028f"
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    got = [(no, line.rstrip("\n\r\x0c\u2028")) for no, line in TextFile(path).lines()]
    assert got == list(enumerate(text.splitlines(), start=1))


def test_utf8_bom_latin1_and_crlf_are_read(tmp_path: Path) -> None:
    body = HEAD.replace("##TITLE=t", "##TITLE=café µm") + TWO_POINTS + "##END=\n"
    bom = tmp_path / "bom.jdx"
    bom.write_bytes(b"\xef\xbb\xbf" + body.replace("\n", "\r\n").encode("utf-8"))
    latin = tmp_path / "latin.jdx"
    latin.write_bytes(body.encode("latin-1"))
    assert read_jcamp(bom).title == read_jcamp(latin).title == "café µm"


# --- JCAMP-DX ------------------------------------------------------------------------------


def test_dup_count_right_after_a_dup_count_is_refused() -> None:
    with pytest.raises(ValueError, match="after another DUP"):
        expand(tokenize("A0S9S9"), 1000)


def test_dup_expansion_is_checked_before_it_is_allocated() -> None:
    with pytest.raises(TooManyValues, match="exceeds the point limit"):
        expand(tokenize("A0S" + "9" * 4000), 10)  # no int() of 4,000 digits either
    with pytest.raises(TooManyValues, match="more than 3"):
        expand(tokenize("1 2 3 4"), 3)


def test_an_endless_data_line_stops_at_npoints(tmp_path: Path) -> None:
    table = "##FIRSTX=1\n##LASTX=10\n##NPOINTS=10\n##XYDATA=(X++(Y..Y))\n1" + " 1" * 100_000
    with pytest.raises(SpectrumFileError, match="more ordinates than NPOINTS=10") as info:
        read_jcamp(_write(tmp_path, HEAD + table + "\n##END=\n"))
    assert info.value.line == 8


def test_blocks_nested_too_deep_are_refused(tmp_path: Path) -> None:
    text = "##TITLE=link\n" * (MAX_BLOCK_DEPTH + 1)
    with pytest.raises(SpectrumFileError, match="nested more than") as info:
        read_jcamp(_write(tmp_path, text))
    assert info.value.line == MAX_BLOCK_DEPTH + 1


def test_metadata_is_bounded_but_the_spectrum_still_read(tmp_path: Path) -> None:
    labels = "".join(f"##$L{i}=v{i}\n" for i in range(MAX_META_LABELS + 50))
    long_note = "##$NOTE=" + "n" * (3 * MAX_META_CHARS) + "\n" + "more\n" * 5000
    # the labels the reader needs come after all that metadata
    rec = read_jcamp(_write(tmp_path, HEAD + labels + long_note + TWO_POINTS + "##END=\n"))
    assert len(rec) == 2
    assert "l0" in rec.metadata and f"l{MAX_META_LABELS - 1}" in rec.metadata
    assert f"l{MAX_META_LABELS}" not in rec.metadata and "note" not in rec.metadata
    rec = read_jcamp(_write(tmp_path, HEAD + long_note + TWO_POINTS + "##END=\n"))
    assert len(rec.metadata["note"]) == MAX_META_CHARS


def test_only_the_chosen_block_is_kept_and_later_blocks_still_checked(tmp_path: Path) -> None:
    spectrum = HEAD + TWO_POINTS + "##END=\n"
    empty = "##TITLE=e\n##$X=1\n##END=\n" * 1000
    assert len(read_jcamp(_write(tmp_path, spectrum + empty))) == 2
    with pytest.raises(SpectrumFileError, match="no ##END") as info:
        read_jcamp(_write(tmp_path, spectrum + empty + "##TITLE=cut\n##$X=1\n"))
    assert info.value.line == 3 * 1000 + 9 + 2


# --- JSON ----------------------------------------------------------------------------------


def _record(y: object = None, first: object = 400, last: object = 4000) -> dict[str, object]:
    return {
        "name": "a",
        "spectrum": {"firstX": first, "lastX": last, "y": y or [50.0, 60.0, 70.0]},
    }


@pytest.mark.parametrize(
    "literal",
    [
        "1" + "0" * 399,  # a 400-digit integer: float() would overflow
        "9" * 5000,  # beyond Python's digit limit for int()
        "0." + "1" * 400,  # a 400-digit fraction
        "-1" + "0" * 399 + "e5",
    ],
)
@pytest.mark.parametrize("where", ["firstX", "y"])
def test_a_number_with_hundreds_of_digits_is_a_clean_error(
    tmp_path: Path, literal: str, where: str
) -> None:
    text = json.dumps(_record())
    text = (
        text.replace('"firstX": 400', f'"firstX": {literal}')
        if where == "firstX"
        else (text.replace("60.0", literal))
    )
    with pytest.raises(SpectrumFileError, match=r"a number of \d+ characters"):
        read_json_records(_write(tmp_path, text, "r.json"))


def test_too_many_keys_are_refused_before_parsing(tmp_path: Path) -> None:
    obj = {f"k{i}": 0 for i in range(MAX_JSON_KEYS + 1)} | _record()
    with pytest.raises(SpectrumFileError, match="keys, more than the limit"):
        read_json_records(_write(tmp_path, json.dumps(obj), "r.json"))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
def test_nesting_is_bounded(tmp_path: Path, depth: int) -> None:
    text = '[{"name": "a", "x": ' + "[" * depth + "]" * depth + "}]"
    with pytest.raises(SpectrumFileError, match="nested"):
        read_json_records(_write(tmp_path, text, "r.json"))


def test_brackets_and_colons_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    obj = _record() | {"notes": "[" * 100 + "{:" * 100, "source": "https://example.org/a:b"}
    (rec,) = read_json_records(_write(tmp_path, json.dumps(obj), "r.json"))
    assert rec.metadata["notes"].startswith("[[[")


def test_json_larger_than_its_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with open(path, "wb") as fh:  # sparse
        fh.seek(MAX_JSON_BYTES)
        fh.write(b"]")
    with pytest.raises(SpectrumFileError, match="limit"):
        read_json_records(path)


# --- CSV -----------------------------------------------------------------------------------


def test_csv_metadata_comments_are_bounded(tmp_path: Path) -> None:
    comments = "".join(f"# k{i}: {'v' * 10_000}\n" for i in range(1000))
    rec = read_csv(_write(tmp_path, comments + "wavenumber_cm-1,absorbance\n1,1\n2,1\n", "c.csv"))
    assert len(rec.metadata) == 256 and all(len(v) == 4096 for v in rec.metadata.values())


def test_a_csv_row_with_thousands_of_columns_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "wavenumber_cm-1,absorbance\n1,1\n" + ",".join("1" * 100_000), "c.csv")
    with pytest.raises(SpectrumFileError, match="expected 2 columns, found 100000") as info:
        read_csv(path)
    assert info.value.line == 3


# --- which file an error names -------------------------------------------------------------


def test_an_error_about_a_record_read_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "wavenumber_cm-1,counts\n1000,5\n1002,6\n", "counts.csv")
    rec = read_spectrum(path)
    assert rec.source == str(path)
    with pytest.raises(SpectrumFileError, match="cannot convert") as info:
        rec.absorbance()
    assert info.value.path == str(path)


def test_an_error_about_a_record_built_in_memory_names_record() -> None:
    rec = SpectrumRecord(np.array([1.0, 2.0]), np.array([1.0, 2.0]), "counts")
    with pytest.raises(SpectrumFileError) as info:
        rec.absorbance()
    assert info.value.path == "<record>"
    with pytest.raises(SpectrumFileError) as info:
        SpectrumRecord(np.array([2.0, 1.0]), np.array([1.0, 2.0]), "absorbance")
    assert info.value.path == "<record>"
