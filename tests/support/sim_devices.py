"""Simulated devices for control-room tests: real paho clients speaking the MQTT contract.

Each :class:`SimDevice` signs its results and its retained ``status``, ``info``, ``health`` and
``alarm`` (and its last will) with a real device key (``edge.publish``), keeps results in an
in-memory archive by ``seq`` and answers ``ack``, ``replay`` and ``get_spectrum`` the way
docs/mqtt.md describes (signed; unsigned with ``forge_responses``). It can skip a result (a
gap the console must notice), publish one twice (a redelivery), publish one late
(historical), or forge one (signed by another key);
:meth:`SimDevice.publish_state` with ``sign_with``/``unsigned`` forges state the same way.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from helpers_mqtt import make_identification
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.publish import messages
from edge.publish.signing import DeviceKey

#: The shipped library, loaded once for every simulated device's get_spectrum answers.
_LIBRARY: dict[str, Any] = {}


class SimDevice:
    """One simulated device at ``customs/<post>/<device>`` on a broker on 127.0.0.1:*port*."""

    def __init__(
        self, port: int, post: str = "post-1", device: str = "dev-1", *, answer: bool = True
    ) -> None:
        self.post, self.device = post, device
        self.prefix = f"customs/{post}/{device}"
        self.key = DeviceKey.generate()
        self.archive: dict[int, dict[str, Any]] = {}
        self.seq = 0
        self.alarm: dict[str, Any] | None = None
        self.answer = answer
        #: Answer commands unsigned (a forgery: anyone on the broker can publish there).
        self.forge_responses = False
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sim-{device}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        will = self.key.sign(messages.status_payload("offline", device, post))
        self.client.will_set(f"{self.prefix}/status", json.dumps(will), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise TimeoutError(f"simulated device {device} did not connect")

    # -- state ---------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, *_a: Any) -> None:
        client.subscribe(f"{self.prefix}/cmd/+", qos=1)
        self.publish_state("status", messages.status_payload("online", self.device, self.post))
        self.publish_info()
        self.publish_state("alarm", messages.alarm_payload(self.device, self.post, active=False))

    def publish_state(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        sign_with: DeviceKey | None = None,
        unsigned: bool = False,
    ) -> mqtt.MQTTMessageInfo:
        """Publish retained state signed with the device key (*sign_with*: another key, a
        forgery; *unsigned*: no signature, as anyone on the broker could publish it)."""
        body = payload if unsigned else (sign_with or self.key).sign(payload)
        messages.validate(kind, body)
        return self.client.publish(f"{self.prefix}/{kind}", json.dumps(body), qos=1, retain=True)

    def publish_info(self, key: DeviceKey | None = None) -> None:
        key = key or self.key
        self.publish_state(
            "info",
            messages.info_payload(
                self.device,
                self.post,
                prefix=self.prefix,
                public_key={"alg": "Ed25519", "key_id": key.key_id, "value": key.public_b64},
                commands=("ack", "replay", "get_spectrum"),
            ),
            sign_with=key,  # an info is signed by the key it announces
        )

    def publish_health(self, **extra: Any) -> None:
        self.publish_state(
            "health",
            messages.health_payload(
                self.device,
                self.post,
                uptime_s=12.0,
                outbox={"waiting": 0, "alarms_waiting": 0, "dropped": 0, "oldest_age_s": None},
                instrument_temperature_c=31.5,
                **extra,
            ),
        )

    # -- results ---------------------------------------------------------------------------

    def make_result(
        self, *, alarm: bool = False, consignment: str | None = None, key: DeviceKey | None = None
    ) -> dict[str, Any]:
        """A new signed result with the next seq, kept in the archive (not published)."""
        with self._lock:
            self.seq += 1
            seq = self.seq
        payload = messages.result_payload(
            make_identification(seq, alarm=alarm),
            device=self.device,
            post=self.post,
            seq=seq,
            consignment=consignment or f"MSKU{seq:07d}",
        )
        signed = (key or self.key).sign(payload)
        messages.validate("scan-result", signed)
        self.archive[seq] = signed
        return signed

    def send(self, result: dict[str, Any], *, historical: bool = False) -> mqtt.MQTTMessageInfo:
        body = dict(result, historical=historical)
        info = self.client.publish(f"{self.prefix}/scan/result", json.dumps(body), qos=1)
        if result["severity"] == "alarm" and not historical:
            self.alarm = result
            self.publish_state(
                "alarm",
                messages.alarm_payload(
                    self.device,
                    self.post,
                    active=True,
                    scan_id=result["scan_id"],
                    substance=result["substance"],
                    severity="alarm",
                    consignment=result["consignment"],
                ),
            )
        return info

    def result(self, *, alarm: bool = False, consignment: str | None = None) -> dict[str, Any]:
        """Make and publish one result; returns it."""
        r = self.make_result(alarm=alarm, consignment=consignment)
        self.send(r).wait_for_publish(5)
        return r

    # -- commands ------------------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        name = msg.topic.rsplit("/", 1)[-1]
        body = json.loads(msg.payload or b"{}")
        self.commands.append((name, body))
        if not self.answer:
            return
        corr = getattr(msg.properties, "CorrelationData", None)
        if name == "ack":
            result = self._ack(body)
        elif name == "replay":
            result = self._replay(body)
        elif name == "get_spectrum":
            result = self._spectrum(body)
        else:
            return
        props = Properties(PacketTypes.PUBLISH)
        if corr:
            props.CorrelationData = corr
        if "error" in result:
            payload = messages.response_payload(name, self.device, self.post, error=result["error"])
        else:
            payload = messages.response_payload(name, self.device, self.post, result=result)
        # forged: unsigned, as anyone on the broker could answer; else signed like the device's
        body_out = payload if self.forge_responses else self.key.sign(payload)
        client.publish(
            f"{self.prefix}/cmd/{name}/response", json.dumps(body_out), qos=1, properties=props
        )

    def _ack(self, body: dict[str, Any]) -> dict[str, Any]:
        active = self.alarm
        if active is None or body.get("scan_id") not in (None, active["scan_id"]):
            return {"cleared": False, "scan_id": body.get("scan_id")}
        self.alarm = None
        cleared = messages.alarm_payload(
            self.device, self.post, active=False, acknowledged_by=body.get("operator")
        )
        cleared["scan_id"] = active["scan_id"]
        self.publish_state("alarm", cleared)
        return {"cleared": True, "scan_id": active["scan_id"]}

    def _replay(self, body: dict[str, Any]) -> dict[str, Any]:
        lo, hi = int(body["from_seq"]), int(body["to_seq"])
        sent = 0
        for seq in range(lo, hi + 1):
            if seq in self.archive:
                self.send(self.archive[seq], historical=True)
                sent += 1
        return {"from_seq": lo, "to_seq": hi, "sent": sent, "missing": hi - lo + 1 - sent}

    def _spectrum(self, body: dict[str, Any]) -> dict[str, Any]:
        """The top hit's library spectrum with a little noise (what a real scan resembles)."""
        from edge.library.format import load_library

        scan_id = body["scan_id"]
        result = next((r for r in self.archive.values() if r["scan_id"] == scan_id), None)
        if result is None:
            return {"error": ("not_found", f"no scan {scan_id}")}
        lib = _LIBRARY.get("lib") or _LIBRARY.setdefault("lib", load_library())
        name = result["hits"][0]["name"]
        y = np.asarray(lib.spectra[lib.index(name)], dtype=np.float64) if name in lib else None
        x = np.asarray(lib.grid)
        if y is None:
            y = 0.6 * np.exp(-(((x - 1715.0) / 20.0) ** 2))
        y = y + np.random.default_rng(self.seq).normal(0, 0.01, y.size)
        return {
            "scan_id": scan_id,
            "kind": body.get("kind", "processed"),
            "x_unit": "1/cm",
            "y_unit": "absorbance",
            "x": [round(float(v), 3) for v in x],
            "y": [round(float(v), 5) for v in y],
        }

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
