"""Atomic file replacement keeps the old file when a write fails and leaves no temp files."""

from __future__ import annotations

from pathlib import Path

import pytest

from spectra_io.atomic import atomic_write_bytes, atomic_write_text, replace_dir


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


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_replace_dir_swaps_in_the_new_directory_and_removes_the_old(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "a.bin").write_bytes(b"old")
    tmp = tmp_path / ".model.tmp"
    (tmp / "sub").mkdir(parents=True)
    (tmp / "a.bin").write_bytes(b"new")
    (tmp / "sub" / "b.json").write_bytes(b"{}")
    replace_dir(tmp, target)
    assert _tree(target) == {"a.bin": b"new", "sub/b.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no tmp, no old copy


def test_replace_dir_into_a_new_place(tmp_path: Path) -> None:
    tmp = tmp_path / ".lib.tmp"
    tmp.mkdir()
    (tmp / "x").write_bytes(b"1")
    replace_dir(tmp, tmp_path / "lib")
    assert _tree(tmp_path / "lib") == {"x": b"1"}


def test_replace_dir_puts_the_old_directory_back_when_the_swap_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    target = tmp_path / "model"
    target.mkdir()
    (target / "a.bin").write_bytes(b"old")
    tmp = tmp_path / ".model.tmp"
    tmp.mkdir()
    (tmp / "a.bin").write_bytes(b"new")
    real_rename = os.rename

    def refuse_swap(src: str | Path, dst: str | Path) -> None:
        if Path(src) == tmp:
            raise OSError("rename refused")
        real_rename(src, dst)

    monkeypatch.setattr("spectra_io.atomic.os.rename", refuse_swap)
    with pytest.raises(OSError, match="rename refused"):
        replace_dir(tmp, target)
    assert _tree(target) == {"a.bin": b"old"}  # rolled back
    assert _tree(tmp) == {"a.bin": b"new"}  # left for the caller
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.tmp", "model"]
