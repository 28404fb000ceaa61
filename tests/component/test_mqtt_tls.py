"""TLS with client certificates: generated in the test with cryptography's x509."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from certs import make_ca, make_leaf
from helpers_mqtt import Subscriber, make_config, make_identification
from mosquitto_broker import BrokerFactory, BrokerTls

from edge.errors import ConfigError
from edge.publish import Courier, DeviceKey, MqttLink, Outbox

PREFIX = "customs/post-1/dev-1"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    ca_key, ca, ca_path = make_ca(pki_dir, "post-ca")
    rogue_key, rogue, _ = make_ca(pki_dir, "rogue-ca")
    srv_crt, srv_key = make_leaf(pki_dir, "broker", ca_key, ca, server=True)
    cli_crt, cli_key = make_leaf(pki_dir, "dev-1", ca_key, ca, server=False)
    bad_crt, bad_key = make_leaf(pki_dir, "intruder", rogue_key, rogue, server=False)
    return {
        "ca": ca_path,
        "server_crt": srv_crt,
        "server_key": srv_key,
        "client_crt": cli_crt,
        "client_key": cli_key,
        "rogue_crt": bad_crt,
        "rogue_key": bad_key,
    }


def test_client_certificate_accepted_and_others_refused(
    tmp_path: Path, pki: dict[str, Path], mosquitto_factory: BrokerFactory
) -> None:
    broker = mosquitto_factory(
        tls=BrokerTls(pki["ca"], pki["server_crt"], pki["server_key"], require_certificate=True)
    )
    tls_ok = {
        "enabled": True,
        "ca_file": str(pki["ca"]),
        "cert_file": str(pki["client_crt"]),
        "key_file": str(pki["client_key"]),
    }
    cfg = make_config(tmp_path / "d", broker.port, mqtt={"tls": tls_ok})

    def sub_tls(client: object) -> None:
        client.tls_set(  # type: ignore[attr-defined]
            ca_certs=str(pki["ca"]),
            certfile=str(pki["client_crt"]),
            keyfile=str(pki["client_key"]),
        )

    sub = Subscriber(broker.port, [f"{PREFIX}/scan/result"], tls=sub_tls)
    sub.wait_subscribed()
    courier = Courier(
        cfg,
        MqttLink(cfg),
        Outbox.for_data_dir(cfg.device.data_dir),
        DeviceKey.load_or_create(cfg.device.data_dir),
    )
    courier.start()
    try:
        assert courier.link.wait_connected(10)
        done = courier.submit_result(make_identification())
        got = sub.wait_count(f"{PREFIX}/scan/result", 1, timeout=10)
    finally:
        courier.stop()
        courier.outbox.close()
        sub.close()
    assert got[0].json()["scan_id"] == done.scan_id

    # without a client certificate, and with one from another CA: never connected
    no_cert = {"enabled": True, "ca_file": str(pki["ca"])}
    rogue = dict(tls_ok, cert_file=str(pki["rogue_crt"]), key_file=str(pki["rogue_key"]))
    for name, tls in (("no cert", no_cert), ("rogue cert", rogue)):
        bad_cfg = make_config(tmp_path / name, broker.port, mqtt={"tls": tls})
        link = MqttLink(bad_cfg)
        link.start()
        try:
            assert not link.wait_connected(2.0), name
            assert link.epoch == 0
        finally:
            link.stop()

    # a broker certificate from an unknown CA is refused by the device
    rogue_ca = make_config(
        tmp_path / "rogue-ca",
        broker.port,
        mqtt={"tls": dict(tls_ok, ca_file=str(tmp_path / "pki" / "rogue-ca.pem"))},
    )
    link = MqttLink(rogue_ca)
    link.start()
    try:
        t0 = time.monotonic()
        assert not link.wait_connected(2.0)
        assert time.monotonic() - t0 >= 1.9
    finally:
        link.stop()


def test_missing_tls_files_are_config_errors(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, 1, mqtt={"tls": {"enabled": True, "ca_file": str(tmp_path / "nope.pem")}}
    )
    with pytest.raises(ConfigError):
        MqttLink(cfg)


def test_password_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.publish.client import read_password

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = make_config(tmp_path, 1, mqtt={"username": "dev-1"})
    assert read_password(cfg) == "s3cret"
    (creds / "other").write_text("x2")
    cfg = make_config(tmp_path, 1, mqtt={"username": "dev-1", "password_file": "other"})
    assert read_password(cfg) == "x2"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    cfg = make_config(tmp_path, 1, mqtt={"password_file": str(tmp_path / "missing")})
    with pytest.raises(ConfigError):
        read_password(cfg)


def test_password_auth_and_refused_connect_is_not_connected(
    tmp_path: Path, mosquitto_factory: BrokerFactory
) -> None:
    broker = mosquitto_factory(users={"dev-1": "right-password"})
    good = tmp_path / "good"
    good.write_text("right-password\n")
    bad = tmp_path / "bad"
    bad.write_text("wrong")
    cfg = make_config(
        tmp_path / "d1", broker.port, mqtt={"username": "dev-1", "password_file": str(good)}
    )
    link = MqttLink(cfg)
    link.start()
    try:
        assert link.wait_connected(10)
    finally:
        link.stop()
    cfg = make_config(
        tmp_path / "d2", broker.port, mqtt={"username": "dev-1", "password_file": str(bad)}
    )
    link = MqttLink(cfg)
    link.start()
    try:
        assert not link.wait_connected(2.0)
        assert link.epoch == 0
        assert link.last_error is not None and "refused" in link.last_error
    finally:
        link.stop()
