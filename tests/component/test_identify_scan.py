"""The scan pipeline on the wire-level simulator: identify, mixture, empty crystal; CLI scan."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.scan.pipeline import ScanPipeline, run_scan


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[device]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\n'
        "[outbox]\nflush_timeout_s = 0.5\n"
    )
    return path


@pytest.mark.timeout(120)
def test_scan_pipeline_identifies_mixes_and_rejects(cfg_file: Path) -> None:
    cfg = load_config(cfg_file)
    with ScanPipeline.open(cfg) as pipe:
        names = pipe.identifier.library.names()
        drug = next(e.name for e in pipe.identifier.library.entries if e.category == "narcotic")
        cutter = next(
            e.name for e in pipe.identifier.library.entries if e.category == "cutting_agent"
        )
        assert pipe.samples is not None  # the simulator's: the test is the officer
        empty = pipe.scan().decision  # the simulator starts with a clean crystal
        assert empty.status == "rejected" and empty.reason == "no_sample"
        pipe.samples.place(drug)
        single = pipe.scan(reference="CONT-42")
        assert single.identification.status == "identified"
        assert single.identification.substance is not None
        assert (
            single.identification.substance.name == drug
            and single.identification.severity == "alarm"
        )
        assert (
            single.reference == "CONT-42"
            and single.spectrum.shape == pipe.identifier.library.grid.shape
        )
        assert single.quality is not None
        assert single.quality.ok and "snr" in single.quality.metrics
        assert single.sample is not None and single.raw_wavenumbers is not None
        assert single.sample.shape == single.raw_wavenumbers.shape
        pipe.samples.place(f"{drug}:0.5,{cutter}:0.5")
        mix = pipe.scan().decision
        assert mix.status == "mixture" and {m.name for m in mix.mixture} == {drug, cutter}
        assert mix.severity == "alarm"
        pipe.samples.place(drug)
        again = pipe.scan()
        assert again.sample is not None and again.decision.status == "identified"
        assert pipe.state().background_age_s is not None
        # health.identification: the shipped library's own calibration, fitted for it
        ident = pipe.identification()
        assert ident is not None
        assert ident["calibration"].endswith("calibration.json")
        assert ident["calibration_matches_library"] is True
        assert ident["library_hash"] == pipe.identifier.library.content_hash[:16]
        validate_health_identification(ident)
    assert drug in names


def validate_health_identification(ident: dict[str, object]) -> None:
    """The ``identification`` member validates against the health schema's."""
    import jsonschema

    from edge.publish.messages import schema

    jsonschema.validate(ident, schema("health")["properties"]["identification"])


@pytest.mark.timeout(120)
def test_run_scan_and_cli_scan_json(cfg_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(cfg_file)
    out = run_scan(cfg, None)
    assert out.decision.status == "rejected" and out.extra["seconds"] > 0
    code = main(["scan", "--config", str(cfg_file), "--json", "--reference", "CONT-7"])
    obj = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and obj["status"] == "rejected" and obj["reason"] == "no_sample"
    assert obj["reference"] == "CONT-7"


def test_cli_scan_unknown_sample_is_usage_error(
    cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", "--config", str(cfg_file), "--sample", "no-such-thing"]) == 2
    assert "no-such-thing" in capsys.readouterr().err
