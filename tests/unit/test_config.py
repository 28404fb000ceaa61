"""The one config schema: defaults, strictness, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.config import Config, load_config
from edge.errors import ConfigError


def test_shipped_default_runs_locally() -> None:
    cfg = load_config(None)
    assert cfg.instrument.driver == "sim"
    assert cfg.mqtt.host == "localhost"
    assert cfg.mqtt.port == 1883
    assert cfg.device.id == "altynkol-01"
    assert "~" not in str(cfg.device.data_dir)


def test_env_var_names_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[device]\nid = "post-7"\n')
    monkeypatch.setenv("SPECTRA_EDGE_CONFIG", str(f))
    assert load_config(None).device.id == "post-7"


def test_unknown_key_rejected_with_path(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[mqtt]\nhots = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert (
        "mqtt.hots",
        "unknown key (not in the schema; check the spelling)",
    ) in info.value.problems


def test_wrong_type_rejected(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[mqtt]\nport = 'eighteen'\n[instrument]\ndriver = 'usb'\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    keys = [k for k, _ in info.value.problems]
    assert "mqtt.port" in keys and "instrument.driver" in keys


def test_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_bad_toml_is_clear(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[mqtt\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f)


def test_every_field_is_described() -> None:
    def walk(model: type, path: str) -> None:
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            assert info.description, f"{path}{name} has no description"
            ann = info.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann, f"{path}{name}.")

    walk(Config, "")


def test_cli_validate_reports_each_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[mqtt]\nport = 0\nfoo = 1\n")
    assert main(["config", "validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert "mqtt.port" in err and "mqtt.foo" in err


def test_cli_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[device]\nid = 'a'\n")
    assert main(["config", "validate", str(f)]) == 0
    assert "OK" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "spectra-edge" in capsys.readouterr().out
