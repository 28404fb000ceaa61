"""The one configuration schema of spectra-edge.

Every key is typed and described; unknown keys are rejected (``extra="forbid"``) so a typo
fails loudly instead of being silently ignored. Each section is owned by one part of the
product; ``spectra-edge config validate FILE`` checks a file against all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hal.protocol import LIMITS

_INTEGRATION_MS = LIMITS.integration_ms
#: MQTT 5 Session Expiry Interval is a four-byte integer (2^32-1 = never expires).
MQTT_MAX_SESSION_EXPIRY_S = 2**32 - 1


class Section(BaseModel):
    """Base of every config section: strict, frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, validate_default=True)


class DeviceConfig(Section):
    """Who this box is and where it keeps its data."""

    id: str = Field(
        "altynkol-01",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Device identity, used in MQTT topics; letters, digits, '-', '_', '.'.",
    )
    post: str = Field(
        "altynkol",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Customs post the device belongs to; used in MQTT topics.",
    )
    data_dir: Path = Field(
        Path("/var/lib/spectra-edge"),
        description="Writable directory for the outbox, the scan archive, keys and state.",
    )

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_named(cls, value: object) -> object:
        # Path("") is ".": an empty value would quietly use the current directory
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a directory (an empty value would mean the current one)")
        return value


class SpiConfig(Section):
    """SPI link to the spectrometer front end (driver = 'spi')."""

    bus: int = Field(0, ge=0, description="SPI bus number: /dev/spidev<bus>.<chip_select>.")
    chip_select: int = Field(0, ge=0, description="Chip-select line on that bus.")
    max_speed_hz: int = Field(8_000_000, ge=100_000, le=50_000_000, description="SPI clock in Hz.")
    data_ready_pin: int = Field(
        25, ge=0, le=53, description="BCM GPIO pin of the front end's data-ready output."
    )


class SimConfig(Section):
    """Simulated front end (driver = 'sim')."""

    seed: int = Field(1234, description="Random seed; the same seed gives the same readings.")
    pixels: int = Field(
        1024,
        ge=LIMITS.pixels[0],
        le=LIMITS.pixels[1],
        description="Detector pixel count the simulator reports "
        f"({LIMITS.pixels[0]}..{LIMITS.pixels[1]}).",
    )
    bits: int = Field(
        16,
        description="Sample width on the wire, bits "
        f"({' or '.join(map(str, LIMITS.sample_bits))}).",
    )
    temperature_c: float = Field(
        32.0, ge=-20.0, le=80.0, description="Detector temperature the simulator starts at."
    )
    atmosphere: bool = Field(
        True, description="Add residual water-vapour and CO2 bands to the readings."
    )

    @model_validator(mode="after")
    def _geometry_on_the_wire(self) -> Self:
        LIMITS.check_geometry(self.pixels, self.bits)  # the check the simulator makes
        return self


class ReplayConfig(Section):
    """Replay driver (driver = 'replay'): plays recorded spectra from files."""

    files: list[Path] = Field(
        default_factory=list, description="JCAMP-DX or CSV spectra to play, in order, cyclically."
    )


class InstrumentConfig(Section):
    """The spectrometer and how to reach it."""

    driver: Literal["sim", "spi", "replay"] = Field(
        "sim", description="sim: wire-level simulator; spi: real front end; replay: files."
    )
    integration_ms: float = Field(
        50.0,
        description="Detector integration time per scan, ms "
        f"({_INTEGRATION_MS[0]:g}..{_INTEGRATION_MS[1]:g}).",
    )
    coadds: int = Field(
        16,
        ge=LIMITS.coadds[0],
        le=LIMITS.coadds[1],
        description="Scans co-added into one frame; integration_ms x coadds must fit one "
        "frame of the front end (about 71 minutes).",
    )
    timeout_s: float = Field(
        5.0, gt=0.0, le=120.0, description="Longest wait for one frame beyond its exposure, s."
    )
    retries: int = Field(
        3, ge=0, le=10, description="Retries of a frame after a CRC error or timeout."
    )
    spi: SpiConfig = Field(default_factory=SpiConfig, description="SPI link settings.")
    sim: SimConfig = Field(default_factory=SimConfig, description="Simulator settings.")
    replay: ReplayConfig = Field(default_factory=ReplayConfig, description="Replay settings.")

    @field_validator("integration_ms")
    @classmethod
    def _integration_in_range(cls, integration_ms: float) -> float:
        LIMITS.integration_to_us(integration_ms)  # the driver's own check (hal.protocol)
        return integration_ms

    @model_validator(mode="after")
    def _driver_accepts(self) -> Self:
        """Refuse here what the configured driver would refuse at open."""
        if self.driver in ("sim", "spi"):
            LIMITS.check_exposure(self.integration_ms, self.coadds)
        if self.driver == "replay" and not self.replay.files:
            raise ValueError("driver 'replay' needs at least one file in instrument.replay.files")
        return self


class PanelConfig(Section):
    """Operator panel on GPIO (BCM pin numbers)."""

    enabled: bool = Field(True, description="Drive the panel; off for a box without one.")
    pin_factory: Literal["auto", "mock"] = Field(
        "auto",
        description="gpiozero pin factory: auto (real pins on a Pi, mock pins elsewhere) or mock.",
    )
    scan_button: int = Field(17, ge=0, le=53, description="Scan button input (to ground).")
    long_press_s: float = Field(
        2.0, gt=0.1, le=30.0, description="Hold time that makes a press 'take new background'."
    )
    ready_led: int = Field(5, ge=0, le=53, description="Green 'ready' LED.")
    busy_led: int = Field(6, ge=0, le=53, description="Amber 'busy' LED.")
    alarm_led: int = Field(13, ge=0, le=53, description="Red 'alarm' LED.")
    buzzer: int = Field(19, ge=0, le=53, description="Buzzer output.")

    def pins(self) -> dict[str, int]:
        """Panel function -> BCM pin."""
        return {
            "scan_button": self.scan_button,
            "ready_led": self.ready_led,
            "busy_led": self.busy_led,
            "alarm_led": self.alarm_led,
            "buzzer": self.buzzer,
        }

    @model_validator(mode="after")
    def _one_function_per_pin(self) -> Self:
        if self.enabled:
            _refuse_shared_pins({f"panel.{k}": v for k, v in self.pins().items()})
        return self


class IdentifyConfig(Section):
    """Reference library, classifier and decision thresholds."""

    library: Path | None = Field(
        None, description="Reference library directory; empty: the shipped starter library."
    )
    model: Path | None = Field(
        None, description="Classifier model directory; empty: the shipped model."
    )
    top_k: int = Field(5, ge=1, le=50, description="Hits reported per scan.")
    background_max_age_s: float = Field(
        3600.0,
        gt=0.0,
        description="A scan on an older background is rejected ('background_old'); take a new one.",
    )
    background_min_similarity: float = Field(
        0.98,
        ge=0.0,
        le=1.0,
        description="Least correlation of a new background with the session's first one "
        "('background_mismatch': dirty crystal or changed optics).",
    )


class TlsConfig(Section):
    """TLS to the broker."""

    enabled: bool = Field(False, description="Connect with TLS.")
    ca_file: Path | None = Field(None, description="CA certificate (PEM) that signs the broker.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), optional.")
    key_file: Path | None = Field(None, description="Client private key (PEM), optional.")


class MqttConfig(Section):
    """Connection to the customs post's MQTT broker."""

    host: str = Field("localhost", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker TCP port.")
    prefix: str = Field(
        "customs/{post}/{device}",
        description="Topic prefix; {post} and {device} are replaced by the device section.",
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive, s.")
    session_expiry_s: int = Field(
        86_400,
        ge=0,
        le=MQTT_MAX_SESSION_EXPIRY_S,
        description="Persistent-session expiry the broker keeps for us, s (MQTT 5: at most "
        "2^32-1, which means never).",
    )
    username: str | None = Field(None, description="User name; the password comes from a file.")
    password_file: Path | None = Field(
        None,
        description="File holding the password (e.g. a systemd credential); never on the CLI.",
    )
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")
    reconnect_min_s: float = Field(0.5, gt=0.0, description="First reconnect delay, s.")
    reconnect_max_s: float = Field(30.0, gt=0.0, description="Longest reconnect delay, s.")
    health_interval_s: float = Field(60.0, gt=0.0, description="Period of the health message, s.")

    @model_validator(mode="after")
    def _reconnect_bounds(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s ({self.reconnect_max_s}) is below reconnect_min_s "
                f"({self.reconnect_min_s})"
            )
        return self


class OutboxConfig(Section):
    """Durable outbox of results waiting for the broker."""

    max_messages: int = Field(
        100_000, ge=10, description="Most messages kept; oldest non-alarm ones go first."
    )
    flush_timeout_s: float = Field(
        10.0, gt=0.0, le=600.0, description="How long a one-shot command waits to deliver, s."
    )


class ArchiveConfig(Section):
    """Local archive of scans (raw and processed spectra with their results)."""

    max_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024, description="Size cap, bytes.")
    max_age_days: float = Field(
        90.0,
        gt=0.0,
        description="Age cap, days; applied only to scans stamped by a synchronised clock.",
    )
    max_scans: int = Field(100_000, ge=1, description="Count cap, scans (oldest go first).")


class OtaConfig(Section):
    """Over-the-air updates on this device (``spectra-edge ota``; see edge/ota/)."""

    root: Path = Field(
        Path("/opt/spectra-edge"),
        description="Install root: releases/, data/, the current links and the updater's ota/.",
    )
    service: Literal["systemd", "signal", "none"] = Field(
        "systemd",
        description="How the updater restarts the service and sees it ready; 'signal': no "
        "systemd, SIGHUP/SIGTERM to the pid in the service's ready.json; 'none': no "
        "service to restart (bench or lab), the trial is the self-test and the outbox check.",
    )
    unit: str = Field("spectra-edge.service", description="The service's systemd unit.")
    trial_timeout_s: float = Field(
        180.0, gt=0.0, description="A release not healthy within this time is rolled back, s."
    )
    switch_wait_s: float = Field(
        900.0,
        ge=0.0,
        description="Longest wait for a scan to end or an alarm to be acknowledged before "
        "switching (the switch is deferred meanwhile), s.",
    )
    min_free_mb: int = Field(
        200, ge=0, description="Free space kept beyond what an update needs, MiB."
    )
    max_target_mb: int = Field(
        1024, ge=1, description="Largest target (download and unpacked size) accepted, MiB."
    )
    python: Path | None = Field(
        None,
        description="Interpreter that builds a release's venv; empty: the updater's own base "
        "interpreter (Debian's /usr/bin/python3 on the device).",
    )


class LoggingConfig(Section):
    """Logging to stdout (the journal on the device)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")


class Config(Section):
    """The whole configuration of one spectra-edge box."""

    device: DeviceConfig = Field(default_factory=DeviceConfig, description="Device identity.")
    instrument: InstrumentConfig = Field(
        default_factory=InstrumentConfig, description="Spectrometer."
    )
    panel: PanelConfig = Field(default_factory=PanelConfig, description="Operator panel.")
    identify: IdentifyConfig = Field(default_factory=IdentifyConfig, description="Identification.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT broker.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable outbox.")
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig, description="Scan archive.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")
    ota: OtaConfig = Field(default_factory=OtaConfig, description="Over-the-air updates.")

    @model_validator(mode="after")
    def _panel_and_data_ready_apart(self) -> Self:
        """The real front end's data-ready line must not sit on a panel pin."""
        if self.instrument.driver == "spi" and self.panel.enabled:
            pins = {f"panel.{k}": v for k, v in self.panel.pins().items()}
            pins["instrument.spi.data_ready_pin"] = self.instrument.spi.data_ready_pin
            _refuse_shared_pins(pins)
        return self


def _refuse_shared_pins(pins: dict[str, int]) -> None:
    """ValueError naming the keys when two of *pins* (key -> BCM pin) are the same GPIO."""
    by_pin: dict[int, list[str]] = {}
    for key, pin in pins.items():
        by_pin.setdefault(pin, []).append(key)
    shared = [
        f"{' and '.join(keys)} share GPIO{pin}" for pin, keys in by_pin.items() if len(keys) > 1
    ]
    if shared:
        raise ValueError("one GPIO pin per function: " + "; ".join(shared))
