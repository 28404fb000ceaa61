"""The console verifies ``status`` and ``alarm`` against the admin-approved keys (issue 8 item 8).

Real mosquitto, real SQLite, simulated devices that sign (tests/support/sim_devices.py), and
the console's own ack action with its broker link. A forged, unsigned or unapproved ``alarm``
is stored flagged and never raises or clears an alarm; an acknowledgement counts only when
the device's ``alarm`` is validly signed by an approved key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_db import database_url
from mosquitto_broker import Broker
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sim_devices import SimDevice
from sqlalchemy import select

from controlroom.auth import Identity
from controlroom.commands import CommandLink
from controlroom.db import Database, open_database
from controlroom.db.schema import Alarm, Device, RejectedMessage
from controlroom.ingest import Ingester, IngestSettings
from controlroom.keys import register_key
from controlroom.web.actions import acknowledge
from controlroom.web.context import ConsoleContext
from controlroom.web.queries import devices_overview
from edge.publish import messages
from edge.publish.signing import DeviceKey

SUPERVISOR = Identity(user_id=1, username="sup", role="supervisor", csrf="x", session_hash="y")


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with database_url("sqlite", tmp_path) as url:
        database = open_database(url)
        yield database
        database.close()


@pytest.fixture
def ingester(mosquitto: Broker, db: Database) -> Iterator[Ingester]:
    ing = Ingester(IngestSettings(port=mosquitto.port), db)
    ing.start()
    yield ing
    ing.stop()


def alarm_of(dev: SimDevice, scan_id: str, *, active: bool, by: str | None = None) -> dict:
    """An ``alarm`` payload of *dev* (unsigned: publish_state signs it, or not)."""
    if active:
        return messages.alarm_payload(
            dev.device,
            dev.post,
            active=True,
            scan_id=scan_id,
            substance={
                "name": "TATP",
                "category": "explosive",
                "family": "peroxide",
                "severity": "alarm",
                "cas": "17088-37-8",
            },
            severity="alarm",
        )
    cleared = messages.alarm_payload(dev.device, dev.post, active=False, acknowledged_by=by)
    cleared["scan_id"] = scan_id
    return cleared


PENDING_ANSWER = "ack response not applied: signature pending_key"


def rejected_reasons(db: Database) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(select(RejectedMessage).order_by(RejectedMessage.id)).scalars()
        return [(r.topic, r.reason) for r in rows]


def alarms(db: Database) -> dict[str, Alarm]:
    with db.session() as s:
        return {a.scan_id: a for a in s.execute(select(Alarm)).scalars()}


def test_forged_alarms_raise_nothing_and_clear_nothing(
    mosquitto: Broker, db: Database, ingester: Ingester
) -> None:
    dev = SimDevice(mosquitto.port, "post-1", "dev-1")
    with db.session() as s:
        register_key(s, dev.prefix, dev.key.public_b64, state="approved", by="test-admin")
    forger = DeviceKey.generate()
    try:
        real = dev.result(alarm=True)  # the device's alarm result and its signed alarm
        wait_until(lambda: real["scan_id"] in alarms(db), what="the real alarm")
        # what the device published before its key was approved is flagged too (pending_key)
        before = len(rejected_reasons(db))
        assert {r for _, r in rejected_reasons(db)} <= {"alarm not applied: signature pending_key"}
        # a fake TATP alarm: unsigned, then signed by another key, then by the forger with
        # the device's key id, then a copy of the device's signature on other content
        fakes = [f"fake-{i}" for i in range(4)]
        dev.publish_state("alarm", alarm_of(dev, fakes[0], active=True), unsigned=True)
        dev.publish_state("alarm", alarm_of(dev, fakes[1], active=True), sign_with=forger)
        relabelled = forger.sign(alarm_of(dev, fakes[2], active=True))
        relabelled["signature"]["key_id"] = dev.key.key_id
        dev.publish_state("alarm", relabelled, unsigned=True)
        copied = alarm_of(dev, fakes[3], active=True)
        copied["signature"] = dev.key.sign(alarm_of(dev, real["scan_id"], active=True))["signature"]
        dev.publish_state("alarm", copied, unsigned=True)
        # clearing the real alarm: unsigned, and signed by another key
        dev.publish_state("alarm", alarm_of(dev, real["scan_id"], active=False), unsigned=True)
        dev.publish_state(
            "alarm", alarm_of(dev, real["scan_id"], active=False, by="x"), sign_with=forger
        )
        # a forged 'offline' for the device, and a deleted retained alarm
        dev.publish_state(
            "status", messages.status_payload("offline", "dev-1", "post-1"), sign_with=forger
        ).wait_for_publish(5)
        dev.client.publish(f"{dev.prefix}/alarm", b"", qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: len(rejected_reasons(db)) >= before + 7, what="flagged alarms")
        time.sleep(0.3)
        found = alarms(db)
        assert set(found) == {real["scan_id"]}  # no fake alarm raised
        assert found[real["scan_id"]].state == "open"  # and the real one not cleared
        reasons = rejected_reasons(db)[before:]
        assert all(t == f"{dev.prefix}/alarm" for t, _ in reasons)
        assert sorted(r for _, r in reasons) == sorted(
            [
                "alarm not applied: signature unsigned",
                "alarm not applied: signature unknown_key",
                "alarm not applied: signature invalid",
                "alarm not applied: signature invalid",
                "alarm not applied: signature unsigned",
                "alarm not applied: signature unknown_key",
                "alarm not applied: signature unsigned",  # the deleted retained alarm
            ]
        )
        with db.session() as s:
            row = s.execute(select(Device).where(Device.prefix == dev.prefix)).scalar_one()
            assert row.alarm_signature == "unsigned" and row.status == "offline"
            assert row.status_signature == "unknown_key"
            (overview,) = devices_overview(s)
        # the device page keeps the last signed alarm and shows both forgeries flagged
        assert overview["alarm_active"] is True
        assert overview["alarm_untrusted"] == "unsigned"
        assert overview["status_untrusted"] == "unknown_key"

        # the device's own signed status is trusted again
        dev.publish_state("status", messages.status_payload("online", "dev-1", "post-1"))
        wait_until(lambda: _device(db, dev.prefix).status_signature == "valid", what="status")
    finally:
        dev.close()


def test_an_ack_counts_only_with_the_devices_signed_alarm(
    mosquitto: Broker, db: Database, ingester: Ingester
) -> None:
    approved = SimDevice(mosquitto.port, "post-1", "dev-ok")
    pending = SimDevice(mosquitto.port, "post-1", "dev-new")  # key never approved
    mute = SimDevice(mosquitto.port, "post-1", "dev-mute", answer=False)
    with db.session() as s:
        for d in (approved, mute):
            register_key(s, d.prefix, d.key.public_b64, state="approved", by="test-admin")
    link = CommandLink("127.0.0.1", mosquitto.port)
    link.start()
    ctx = ConsoleContext(db=db, commands=link)
    try:
        results = {d.prefix: d.result(alarm=True) for d in (approved, pending, mute)}
        ids = {p: r["scan_id"] for p, r in results.items()}
        wait_until(lambda: set(ids.values()) <= set(alarms(db)), what="three alarms")
        by_scan = alarms(db)

        # the approved device answers and publishes its signed cleared alarm: acknowledged
        acknowledge(ctx, SUPERVISOR, by_scan[ids[approved.prefix]].id)
        wait_until(
            lambda: alarms(db)[ids[approved.prefix]].state == "acknowledged", what="confirmed"
        )
        assert alarms(db)[ids[approved.prefix]].confirmed_by == "sup"

        # the pending-key device answers and clears it too, but its key is not approved:
        # its signed answer and its cleared alarm are kept flagged, the alarm not acknowledged
        acknowledge(ctx, SUPERVISOR, by_scan[ids[pending.prefix]].id)
        wait_until(
            lambda: any("dev-new/alarm" in t for t, _ in rejected_reasons(db)),
            what="its cleared alarm flagged",
        )
        wait_until(
            lambda: ("customs/post-1/dev-new/cmd/ack/response", PENDING_ANSWER)
            in rejected_reasons(db),
            what="its answer flagged",
        )
        assert alarms(db)[ids[pending.prefix]].state == "ack_sent"
        assert alarms(db)[ids[pending.prefix]].note is None

        # the mute device never answers; a forger clears its alarm and answers for it
        acknowledge(ctx, SUPERVISOR, by_scan[ids[mute.prefix]].id)
        mute.publish_state(
            "alarm",
            alarm_of(mute, ids[mute.prefix], active=False, by="sup"),
            sign_with=DeviceKey.generate(),
        )
        corr = alarms(db)[ids[mute.prefix]].ack_correlation
        assert corr
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = corr.encode()
        for cleared, signer in ((True, None), (False, None), (False, DeviceKey.generate())):
            # "cleared", "no such alarm" (which would mark it not active), and the latter
            # signed by another key: none of them is the device's word
            reply = messages.response_payload(
                "ack",
                "dev-mute",
                "post-1",
                result={"cleared": cleared, "scan_id": ids[mute.prefix]},
            )
            if signer is not None:
                reply = signer.sign(reply)
                reply["signature"]["key_id"] = mute.key.key_id
            mute.client.publish(
                f"{mute.prefix}/cmd/ack/response", json.dumps(reply), qos=1, properties=props
            ).wait_for_publish(5)
        wait_until(
            lambda: sum(t == f"{mute.prefix}/cmd/ack/response" for t, _ in rejected_reasons(db))
            == 3,
            what="the forged answers flagged",
        )
        reasons = [r for t, r in rejected_reasons(db) if t == f"{mute.prefix}/cmd/ack/response"]
        assert sorted(reasons) == [
            "ack response not applied: signature invalid",
            "ack response not applied: signature unsigned",
            "ack response not applied: signature unsigned",
        ]
        assert alarms(db)[ids[mute.prefix]].state == "ack_sent"  # neither cleared nor refused
        assert alarms(db)[ids[mute.prefix]].note is None
    finally:
        link.stop()
        for d in (approved, pending, mute):
            d.close()


def _device(db: Database, prefix: str) -> Device:
    with db.session() as s:
        row = s.execute(select(Device).where(Device.prefix == prefix)).scalar_one()
        s.expunge(row)
        return row


def test_a_key_is_learned_only_from_an_info_signed_by_it(db: Database) -> None:
    from controlroom.keys import KeyRegistry

    key, other = DeviceKey.generate(), DeviceKey.generate()
    info = messages.info_payload(
        "dev-1",
        "post-1",
        prefix="customs/post-1/dev-1",
        public_key={"alg": "Ed25519", "key_id": key.key_id, "value": key.public_b64},
    )
    registry = KeyRegistry()
    with db.session() as s:
        assert registry.learn(s, "customs/post-1/dev-1", info) is None  # unsigned
        assert registry.learn(s, "customs/post-1/dev-1", other.sign(info)) is None  # not its key
        learned = registry.learn(s, "customs/post-1/dev-1", key.sign(info))
    assert learned is not None and learned.state == "pending" and learned.key_id == key.key_id
    status = key.sign(messages.status_payload("online", "dev-1", "post-1"))
    assert registry.signature_state("customs/post-1/dev-1", status) == ("pending_key", key.key_id)
    del status["signature"]
    assert registry.signature_state("customs/post-1/dev-1", status) == ("unsigned", None)
