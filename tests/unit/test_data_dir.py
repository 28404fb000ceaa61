"""device.data_dir: empty, a file, read-only, missing (finding 6 of issue 8)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.store.data_dir import prepare_data_dir


def _config(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "c.toml"
    f.write_text(body)
    return f


def test_empty_data_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, '[device]\ndata_dir = ""\n'))
    assert [k for k, _ in info.value.problems] == ["device.data_dir"]


def test_session_expiry_beyond_mqtt_range_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, f"[mqtt]\nsession_expiry_s = {2**32}\n"))
    assert [k for k, _ in info.value.problems] == ["mqtt.session_expiry_s"]
    assert load_config(_config(tmp_path, f"[mqtt]\nsession_expiry_s = {2**32 - 1}\n"))


def test_reconnect_bounds_must_be_ordered(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(_config(tmp_path, "[mqtt]\nreconnect_min_s = 10\nreconnect_max_s = 1\n"))


def test_missing_data_dir_is_created(tmp_path: Path) -> None:
    assert prepare_data_dir(tmp_path / "a" / "b").is_dir()


def test_a_file_in_place_of_the_data_dir_is_named(tmp_path: Path) -> None:
    (tmp_path / "d").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        prepare_data_dir(tmp_path / "d")


def test_read_only_data_dir_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def read_only(path: object, flags: int, mode: int = 0o777) -> int:
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ConfigError, match="not writable"):
        prepare_data_dir(tmp_path)


def test_a_full_data_dir_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    try:
        assert prepare_data_dir(tmp_path) == tmp_path
    finally:
        monkeypatch.setattr(os, "write", real_write)
