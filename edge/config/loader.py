"""Load and validate a configuration file.

Where the file comes from: ``--config FILE``, else ``$SPECTRA_EDGE_CONFIG``, else the
shipped default (``edge/config/default.toml``), which runs everything on this machine.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.config.schema import Config
from edge.errors import ConfigError

ENV_VAR = "SPECTRA_EDGE_CONFIG"


def default_config_text() -> str:
    """The shipped default configuration, as TOML text."""
    return resources.files("edge.config").joinpath("default.toml").read_text(encoding="utf-8")


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path | None:
    """The file to load: *path*, else ``$SPECTRA_EDGE_CONFIG``, else None (shipped default)."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else None


#: Keys that were once in the schema, with what to do about them (shown instead of
#: "unknown key" when a file still has one).
REMOVED_KEYS = {
    "panel.source_enable": "removed: the IR source is switched by the front end over SPI "
    "(SET_SOURCE); this pin did nothing. Delete the key",
}


def _problems(err: ValidationError) -> list[tuple[str, str]]:
    out = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(root)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = REMOVED_KEYS.get(key, "unknown key (not in the schema; check the spelling)")
        elif item["type"] == "value_error" and "error" in item.get("ctx", {}):
            msg = str(item["ctx"]["error"])  # our own validators' words, without a prefix
        out.append((key, msg))
    return out


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate already-parsed TOML data; raise :class:`ConfigError` listing every problem."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        problems = _problems(err)
        lines = "\n".join(f"  {key}: {msg}" for key, msg in problems)
        raise ConfigError(f"{source}: invalid configuration:\n{lines}", problems) from err
    data_dir = cfg.device.data_dir.expanduser()
    if data_dir != cfg.device.data_dir:
        cfg = cfg.model_copy(
            update={"device": cfg.device.model_copy(update={"data_dir": data_dir})}
        )
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration (see module doc for where from) and validate it."""
    resolved = resolve_config_path(path)
    if resolved is None:
        source, text = "<shipped default>", default_config_text()
    else:
        source = str(resolved)
        try:
            text = resolved.read_text(encoding="utf-8")
        except FileNotFoundError as err:
            raise ConfigError(
                f"{source}: config file not found", [("(file)", "not found")]
            ) from err
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(
                f"{source}: cannot read config file: {err}", [("(file)", str(err))]
            ) from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}", [("(toml)", str(err))]) from err
    return parse_config(data, source)
