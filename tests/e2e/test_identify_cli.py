"""``spectra-edge identify`` on good, corrupt and hostile files; ``evaluate`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from identify_helpers import synthetic_library

from edge.cli import main
from edge.library import save_library
from edge.preprocess.grid import STANDARD_GRID
from spectra_io import SpectrumRecord, write_csv, write_jcamp


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lib = synthetic_library(20, seed=41, name="cli-test")
    path = tmp_path_factory.mktemp("lib") / "library"
    save_library(path, lib.grid, lib.spectra, lib.entries, name="cli-test", version="1")
    return path


def spectrum(lib_dir: Path, row: int) -> SpectrumRecord:
    a = np.load(lib_dir / "spectra.npy")[row].astype(float)
    x = np.arange(700.0, 3900.0, 3.0)
    y = (
        np.interp(x, STANDARD_GRID, a) * 0.8
        + 0.02
        + np.random.default_rng(row).normal(0, 1e-3, x.size)
    )
    return SpectrumRecord(x, y, "absorbance", title=f"row {row}")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = main(["identify", "--json", "--no-model", *argv])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    return code, [json.loads(ln) for ln in lines]


def test_identify_good_files(
    tmp_path: Path, lib_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_csv(tmp_path / "a.csv", spectrum(lib_dir, 3))
    write_jcamp(tmp_path / "b.jdx", spectrum(lib_dir, 7))
    code, objs = run_json(
        capsys, "--library", str(lib_dir), str(tmp_path / "a.csv"), str(tmp_path / "b.jdx")
    )
    assert code == 0 and len(objs) == 2
    a, b = objs
    assert a["file"].endswith("a.csv") and a["status"] == "identified"
    assert a["substance"] == {
        "name": "sub003",
        "category": "cutting_agent",
        "family": None,
        "severity": "info",
        "cas": None,
    }
    assert a["hits"][0]["name"] == "sub003" and 0 <= a["confidence"] <= 1
    assert set(a) >= {
        "file",
        "status",
        "substance",
        "family",
        "confidence",
        "hits",
        "mixture",
        "reason",
    }
    assert b["substance"]["name"] == "sub007"


def test_corrupt_and_hostile_files_are_rejected_one_by_one(
    tmp_path: Path, lib_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    write_csv(good, spectrum(lib_dir, 5))
    jdx = tmp_path / "whole.jdx"
    write_jcamp(jdx, spectrum(lib_dir, 6))
    truncated = tmp_path / "truncated.jdx"
    truncated.write_text(jdx.read_text()[: len(jdx.read_text()) // 2])
    nonnumeric = tmp_path / "nonnumeric.csv"
    nonnumeric.write_text("wavenumber,absorbance\n1000,abc\n1004,0.2\n")
    counts = tmp_path / "counts.csv"
    counts.write_text(
        "wavenumber,counts\n" + "".join(f"{w},{1000 + w}\n" for w in range(700, 3900, 4))
    )
    enormous = tmp_path / "enormous.csv"
    with enormous.open("wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # sparse: no disk used, must be refused unread
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 10)
    missing = tmp_path / "missing.csv"
    files = [good, truncated, nonnumeric, counts, enormous, binary, missing]
    code, objs = run_json(capsys, "--library", str(lib_dir), *map(str, files))
    assert code == 1 and len(objs) == len(files)
    by_name = {Path(o["file"]).name: o for o in objs}
    assert by_name["good.csv"]["status"] == "identified"
    for bad in files[1:]:
        o = by_name[bad.name]
        assert o["status"] == "rejected" and o["reason"] == "unreadable", o
        assert o["error"] and o["substance"] is None


def test_wrong_x_units_are_rejected_by_the_range_gate(
    tmp_path: Path, lib_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = spectrum(lib_dir, 2)
    # wavenumbers written under a nanometre header: read back as 2500-14000 cm^-1
    wrong = tmp_path / "nm.csv"
    wrong.write_text(
        "wavelength_nm,absorbance\n"
        + "".join(f"{x},{y}\n" for x, y in zip(rec.x, rec.y, strict=True))
    )
    code, objs = run_json(capsys, "--library", str(lib_dir), str(wrong))
    assert code == 0
    assert objs[0]["status"] == "rejected" and objs[0]["reason"] == "out_of_range"


def test_human_output_and_shipped_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.library import load_library

    shipped = load_library()
    x, a = shipped.absorbance(shipped.names()[0])
    write_csv(tmp_path / "s.csv", SpectrumRecord(x, a.astype(float) + 0.01, "absorbance"))
    assert main(["identify", "--no-model", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "[identified]" in out and shipped.names()[0] in out


@pytest.mark.timeout(240)
def test_evaluate_writes_report_and_beats_baseline(tmp_path: Path, lib_dir: Path, capsys) -> None:
    out = tmp_path / "report"
    assert (
        main(["evaluate", "--library", str(lib_dir), "--out", str(out), "--seed", "3", "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    for name in ("summary.json", "confusion.png", "reliability.png", "calibration.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    p, b = summary["product"], summary["baseline"]
    assert p["top1"] >= 0.95 and p["unknown_rejection"] >= 0.8 and p["mixture2_both_found"] >= 0.8
    assert p["unknown_rejection"] > b["unknown_rejection"]
    assert summary["held_out"] and summary["calibration"]["reliability"]["n"] == p["n_queries"]
    assert p["false_alarms"] == 0 and p["unknown_not_named"] >= 0.9
    from edge.cli.identify_cmd import _print_summary

    _print_summary(summary)  # what the command prints without --json
    text = capsys.readouterr().out
    assert "mixture2_both_found" in text and "plain correlation" in text and "targets" in text
