"""Atomic file replacement keeps the old file when a write fails and leaves no temp files."""

from __future__ import annotations

from pathlib import Path

import pytest

from spectra_io.atomic import atomic_write_bytes, atomic_write_text


def test_replaces_content(tmp_path: Path) -> None:
    f = tmp_path / "state.json"
    atomic_write_text(f, "old\n")
    atomic_write_text(f, "new\n")
    assert f.read_text("utf-8") == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failed_write_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "state.json"
    atomic_write_bytes(f, b"old")

    def refuse(src: str, dst: str) -> None:
        raise OSError("rename refused")

    monkeypatch.setattr("spectra_io.atomic.os.replace", refuse)
    with pytest.raises(OSError, match="rename refused"):
        atomic_write_bytes(f, b"new")
    assert f.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "nope" / "x.txt", "x")
