"""Quality limits named in the config reach the scan pipeline."""

from __future__ import annotations

from pathlib import Path

from edge.config import Config, parse_config
from edge.scan.pipeline import run_scan


def _cfg(tmp_path: Path, **identify: float) -> Config:
    return parse_config(
        {
            "device": {"data_dir": str(tmp_path)},
            "identify": identify,
            "panel": {"pin_factory": "mock"},
        }
    )


def test_background_age_limit_from_config_rejects(tmp_path: Path) -> None:
    # The background is taken before the sample, so it is older than 1 ms when the sample
    # is measured: the gate must fire with its stable reason code.
    out = run_scan(_cfg(tmp_path, background_max_age_s=0.001), sample="TNT")
    assert out.identification.status == "rejected"
    assert out.identification.reason == "background_old"


def test_default_limits_accept_a_fresh_background(tmp_path: Path) -> None:
    out = run_scan(_cfg(tmp_path), sample="TNT")
    assert out.identification.status == "identified"
    assert out.identification.substance is not None
    assert out.identification.substance.name == "TNT"
