"""Start-up of the command line: what a fresh ``spectra-edge`` process imports.

A module-list check, not a timing one, so machine speed cannot fool it: each command runs in a
fresh interpreter under ``python -X importtime``, which lists every module imported, and the
test names the heavy ones that must not be among them. ``bench/bench_startup.py`` measures the
times themselves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from paths import PROJECT

pytestmark = pytest.mark.timeout(120)

#: Packages nothing light may load: arrays and science, MQTT, crypto, rich output, ML
#: runtimes, hardware, SQLite, the version lookup (importlib.metadata: ``--version`` only).
HEAVY = (
    "numpy",
    "scipy",
    "pybaselines",
    "paho",
    "cryptography",
    "jsonschema",
    "rich",
    "ai_edge_litert",
    "tflite_runtime",
    "tensorflow",
    "matplotlib",
    "gpiozero",
    "spidev",
    "sqlite3",
    "importlib.metadata",
)


@pytest.fixture(scope="module")
def cocaine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shipped-library spectrum as JCAMP-DX: identify runs its whole pipeline on it."""
    from edge.cli import main

    out = tmp_path_factory.mktemp("spectrum") / "cocaine.jdx"
    assert (
        main(
            [
                "library",
                "export",
                str(PROJECT / "models" / "library"),
                "Cocaine HCl",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    return out


def imported_modules(*argv: str) -> set[str]:
    """Every module a fresh ``spectra-edge ARGV...`` imports (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "edge.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    }
    assert len(names) > 50, "no -X importtime listing: the check would see nothing"
    return names


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(p for p in packages if any(m == p or m.startswith(p + ".") for m in modules))


def test_the_check_sees_a_heavy_import(cocaine: Path) -> None:
    """The listing does show numpy and scipy when a command really needs them (no blind
    spot), and identify loads neither MQTT nor crypto nor hardware."""
    modules = imported_modules("identify", str(cocaine))
    assert {"numpy", "scipy", "pybaselines", "ai_edge_litert"} <= set(loaded(modules, HEAVY))
    offline = ("paho", "cryptography", "jsonschema", "gpiozero", "spidev", "matplotlib")
    assert loaded(modules, (*offline, "tensorflow", "edge.publish", "edge.service")) == []


def test_help_imports_nothing_heavy() -> None:
    modules = imported_modules("--help")
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, ("pydantic", "edge.config", "edge.service", "edge.scan")) == []


def test_every_subcommand_help_imports_nothing_heavy() -> None:
    for argv in (("config", "--help"), ("library", "add", "--help"), ("train", "--help")):
        assert loaded(imported_modules(*argv), (*HEAVY, "pydantic")) == [], argv


def test_config_validate_imports_the_schema_and_nothing_heavy(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[instrument]\ndriver = 'spi'\ncoadds = 64\n")
    modules = imported_modules("config", "validate", str(f))
    assert "pydantic" in modules and "edge.config.schema" in modules
    # pydantic itself looks up its plugins with importlib.metadata: allowed here
    assert loaded(modules, tuple(p for p in HEAVY if p != "importlib.metadata")) == []
    assert loaded(modules, ("hal.spectrometer", "hal.sim", "hal.panel", "edge.scan")) == []


def test_version_reads_the_metadata_only_when_asked() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("spectra-edge ")
    assert proc.stdout.split()[1][0].isdigit()
