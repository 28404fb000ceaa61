"""``config validate`` refuses what the driver refuses at open, and no more: for each limit in
``hal.protocol.LIMITS`` (and each cross-field rule), a config just outside fails validation
(and the driver or simulator refuses the same values), and one just inside opens the
simulated instrument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.config import Config, parse_config
from edge.errors import ConfigError
from edge.scan.opener import open_instrument
from hal.clock import FakeClock
from hal.errors import PanelError, ReplayFileError
from hal.panel import Panel
from hal.protocol import LIMITS
from hal.replay import ReplaySpectrometer
from hal.sim import BUILTIN_SUBSTANCES, make_simulator
from hal.spectrometer import SpiSpectrometer

LO_US, HI_US = LIMITS.integration_us
LO_N, HI_N = LIMITS.coadds
LO_PX, HI_PX = LIMITS.pixels
#: The most co-adds at the longest integration whose frame still fits START's duration field.
FIT_N = (LIMITS.max_frame_us - LIMITS.frame_setup_us) // (HI_US + LIMITS.readout_us_per_scan)

# (name, instrument section just inside, the same just outside)
EXPOSURE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("integration min", {"integration_ms": LO_US / 1000}, {"integration_ms": (LO_US - 1) / 1000}),
    ("integration max", {"integration_ms": HI_US / 1000}, {"integration_ms": (HI_US + 1) / 1000}),
    ("coadds min", {"coadds": LO_N}, {"coadds": LO_N - 1}),
    ("coadds max", {"coadds": HI_N}, {"coadds": HI_N + 1}),
    (
        "frame duration",
        {"integration_ms": HI_US / 1000, "coadds": FIT_N},
        {"integration_ms": HI_US / 1000, "coadds": FIT_N + 1},
    ),
]
GEOMETRY_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("pixels min", {"pixels": LO_PX}, {"pixels": LO_PX - 1}),
    ("pixels max", {"pixels": HI_PX}, {"pixels": HI_PX + 1}),
    ("bits 16", {"bits": 16}, {"bits": 8}),
    ("bits 32", {"bits": 32}, {"bits": 24}),
]


def _config(instrument: dict[str, Any], sim: dict[str, Any] | None = None) -> Config:
    section = {"driver": "sim", **instrument, "sim": {"atmosphere": False, **(sim or {})}}
    return parse_config({"instrument": section, "panel": {"pin_factory": "mock"}})


def _open_sim(cfg: Config) -> SpiSpectrometer:
    inst, _ = open_instrument(
        cfg.instrument, clock=FakeClock(), substances=BUILTIN_SUBSTANCES.__getitem__
    )
    assert isinstance(inst, SpiSpectrometer)
    return inst


def _problem_keys(err: ConfigError) -> list[str]:
    return [key for key, _ in err.problems]


def test_the_frame_duration_case_sits_on_the_edge() -> None:
    assert LIMITS.frame_duration_us(HI_US, FIT_N) <= LIMITS.max_frame_us
    assert LIMITS.frame_duration_us(HI_US, FIT_N + 1) > LIMITS.max_frame_us
    assert LO_N <= FIT_N < HI_N  # a cross-field rule, not one of the single ranges


@pytest.mark.parametrize(("name", "inside", "outside"), EXPOSURE_CASES, ids=lambda c: c)
def test_exposure_limits(name: str, inside: dict[str, Any], outside: dict[str, Any]) -> None:
    with _open_sim(_config(inside)) as spec:
        expected = {"integration_ms": 50.0, "coadds": 16, **inside}
        assert (spec.integration_ms, spec.coadds) == (
            expected["integration_ms"],
            expected["coadds"],
        )
    with pytest.raises(ConfigError) as info:
        _config(outside)
    assert any(key.startswith("instrument") for key in _problem_keys(info.value)), name
    # the driver refuses the same values: the schema adds no rule of its own
    sim = make_simulator(clock=FakeClock(), atmosphere=False)
    with pytest.raises(ValueError):
        SpiSpectrometer(sim.bus, sim.data_ready, sim.clock, **outside)
    assert sim.bus.closed


@pytest.mark.parametrize(("name", "inside", "outside"), GEOMETRY_CASES, ids=lambda c: c)
def test_geometry_limits(name: str, inside: dict[str, Any], outside: dict[str, Any]) -> None:
    with _open_sim(_config({}, inside)) as spec:
        got = {"pixels": spec.identity.pixels, "bits": spec.identity.bits}
        assert got == {"pixels": 1024, "bits": 16, **inside}
    with pytest.raises(ConfigError) as info:
        _config({}, outside)
    assert "instrument.sim" in " ".join(_problem_keys(info.value)), name
    with pytest.raises(ValueError, match="unsupported geometry"):
        make_simulator(clock=FakeClock(), **outside)


def test_the_exposure_limit_holds_for_replay_too(tmp_path: Path) -> None:
    """Replay has no frame-duration limit, but the same register ranges."""
    files = [str(tmp_path / "a.jdx")]
    big = {"driver": "replay", "integration_ms": HI_US / 1000, "coadds": HI_N}
    cfg = parse_config({"instrument": {**big, "replay": {"files": files}}})
    assert cfg.instrument.coadds == HI_N  # fits replay, though not one SPI frame
    with pytest.raises(ConfigError, match="71 minutes"):
        parse_config({"instrument": {**big, "driver": "sim"}})
    with pytest.raises(ConfigError, match="coadds"):
        parse_config({"instrument": {**big, "coadds": HI_N + 1, "replay": {"files": files}}})


def test_replay_needs_files() -> None:
    with pytest.raises(ConfigError, match="at least one file"):
        parse_config({"instrument": {"driver": "replay"}})
    with pytest.raises(ReplayFileError, match="at least one spectrum file"):
        ReplaySpectrometer([])


def test_panel_pins_are_one_per_function() -> None:
    with pytest.raises(ConfigError, match=r"panel\.ready_led and panel\.busy_led share GPIO5"):
        parse_config({"panel": {"busy_led": 5}})
    with pytest.raises(PanelError, match="share a GPIO pin"):
        Panel(scan_button=17, ready_led=5, busy_led=5, alarm_led=13, buzzer=19, pin_factory="mock")
    disabled = parse_config({"panel": {"busy_led": 5, "enabled": False}})
    assert not disabled.panel.enabled  # pins of a panel that is not driven are not checked
    cfg = parse_config({"panel": {"busy_led": 7, "pin_factory": "mock"}})
    with Panel(**cfg.panel.pins(), pin_factory=cfg.panel.pin_factory) as panel:
        assert panel.busy_led.pin.info.name == "GPIO7"


def test_data_ready_pin_must_not_be_a_panel_pin() -> None:
    spi_on_17 = {"driver": "spi", "spi": {"data_ready_pin": 17}}
    shared = r"panel\.scan_button and instrument\.spi\.data_ready_pin share GPIO17"
    with pytest.raises(ConfigError, match=shared):
        parse_config({"instrument": spi_on_17})
    assert parse_config({"instrument": spi_on_17, "panel": {"enabled": False}})
    assert parse_config({"instrument": {**spi_on_17, "driver": "sim"}})  # the sim has no pin


def test_source_enable_is_gone_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "old.toml"
    f.write_text("[panel]\nsource_enable = 26\n")
    assert main(["config", "validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert "panel.source_enable: removed" in err and "Delete the key" in err


def test_cli_validate_refuses_what_the_driver_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "long.toml"
    f.write_text(f"[instrument]\nintegration_ms = 10000.0\ncoadds = {FIT_N + 1}\n")
    assert main(["config", "validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert "instrument: a frame of 10000 ms x 430 exceeds 71 minutes" in err
    assert "Value error" not in err  # our words, not pydantic's prefix
    f.write_text(f"[instrument]\nintegration_ms = 10000.0\ncoadds = {FIT_N}\n")
    assert main(["config", "validate", str(f)]) == 0
