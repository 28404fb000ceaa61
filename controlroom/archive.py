"""Writing what devices publish into the console database, one batch per transaction.

:class:`MessageWriter` takes a batch of raw MQTT messages (in arrival order) and writes it in
one transaction:

* every payload is parsed and validated against the contract's JSON Schema; what fails is
  kept in ``rejected_messages`` with the reason and never used;
* results are inserted in ``scan_id`` order with ``ON CONFLICT (scan_id) DO NOTHING``: exactly
  one row per scan however often it is delivered, and two writers never deadlock on each
  other's unsorted batches; each carries its ``signature_state`` from the key registry;
* an alarm-severity result opens an alarm (once per scan_id);
* retained ``status``/``info``/``health``/``alarm`` update the device row (``info`` teaches
  the registry a pending key, when it is signed by the key it announces). ``status`` and
  ``alarm`` are verified against the approved keys and stored with their signature state;
  only an ``alarm`` validly signed by an approved key raises an alarm or confirms an
  acknowledgement. Any other ``alarm`` is stored flagged (in ``rejected_messages``, its
  state in the device row's ``alarm_signature``) and changes no alarm;
* command responses, when signed by the device's approved key (:data:`ACTED_ON_RESPONSES`;
  others are stored flagged), close or write off ``replay`` gaps and store ``get_spectrum``
  answers; an ``ack`` response is noted on the alarm (the signed retained ``alarm`` is what
  confirms it) or marks an alarm the device did not hold.

The caller acknowledges the MQTT messages only after :meth:`MessageWriter.write` returned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controlroom import audit
from controlroom.audit import utcnow
from controlroom.contract import ContractViolation, check
from controlroom.db.schema import Alarm, Device, RejectedMessage, Result, SeqGap, Spectrum
from controlroom.db.upsert import insert_ignore
from controlroom.keys import KeyRegistry
from controlroom.topics import RESULT_KIND, STATE_KINDS, DeviceTopic, TopicFilter
from edge.publish import messages

log = logging.getLogger(__name__)

#: Payload bytes kept of a rejected message.
REJECTED_KEEP = 4096
#: Threads checking signatures (Ed25519 in the cryptography package runs without the GIL).
VERIFY_THREADS = 2


#: Command responses the console acts on (alarm state, stored spectra, written-off gaps):
#: applied only with a valid signature from the device's approved key.
ACTED_ON_RESPONSES = frozenset({"ack", "get_spectrum", "replay"})


@dataclass(frozen=True)
class Incoming:
    """One MQTT message as received (the writer never sees paho objects)."""

    topic: str
    payload: bytes
    retain: bool = False
    correlation: bytes | None = None


@dataclass
class WriteReport:
    """What one batch did."""

    results_new: int = 0
    results_duplicate: int = 0
    rejected: int = 0
    state_updates: int = 0
    responses: int = 0
    max_result_id: int | None = None
    new_alarm_ids: list[int] = field(default_factory=list)
    new_result_ids: list[int] = field(default_factory=list)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as naive UTC."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _result_row(
    dt: DeviceTopic, body: dict[str, Any], sig: tuple[str, str | None], raw: bytes
) -> dict[str, Any]:
    sub = body.get("substance") or {}
    mixture = body.get("mixture") or []
    name = sub.get("name") or (" + ".join(str(m.get("name")) for m in mixture) or None)
    category = sub.get("category") or next(
        (m.get("category") for m in mixture if m.get("category")), None
    )
    return {
        "scan_id": body["scan_id"],
        "prefix": dt.prefix,
        "post": body["post"],
        "device": body["device"],
        "seq": body["seq"],
        "time": parse_time(body["time"]),
        "received_at": utcnow(),
        "consignment": body.get("consignment"),
        "status": body["status"],
        "substance": (name or None) and str(name)[:200],
        "category": category,
        "family": body.get("family"),
        "severity": body["severity"],
        "confidence": float(body["confidence"]),
        "historical": bool(body.get("historical")),
        "signature_state": sig[0],
        "key_id": sig[1],
        "payload": raw.decode("utf-8"),  # as received (it parsed as JSON, so it is UTF-8)
    }


def is_alarm_result(body: dict[str, Any]) -> bool:
    """Whether a result raises an alarm (the device's rule: any part of severity alarm)."""
    if body.get("severity") == "alarm":
        return True
    if (body.get("substance") or {}).get("severity") == "alarm":
        return True
    return any(m.get("severity") == "alarm" for m in body.get("mixture") or [])


class MessageWriter:
    """Writes batches of device messages; one instance per ingester (not thread-safe)."""

    def __init__(self, filter_: TopicFilter, registry: KeyRegistry) -> None:
        self.filter = filter_
        self.registry = registry
        self._pool = ThreadPoolExecutor(max_workers=VERIFY_THREADS, thread_name_prefix="verify")

    def write(self, session: Session, batch: Sequence[Incoming]) -> WriteReport:
        """Write *batch* inside *session*'s transaction (the caller commits)."""
        report = WriteReport()
        results: dict[str, dict[str, Any]] = {}
        state: list[tuple[DeviceTopic, dict[str, Any] | None, bytes]] = []
        responses: list[tuple[DeviceTopic, dict[str, Any], bytes | None, bytes]] = []
        prefixes: dict[str, tuple[str | None, str | None]] = {}
        for msg in batch:
            parsed = self._parse(session, msg, report)
            if parsed is None:
                continue
            dt, kind, body = parsed
            if body is not None:
                prefixes.setdefault(dt.prefix, (body.get("post"), body.get("device")))
            else:
                prefixes.setdefault(dt.prefix, (None, None))
            if kind == "scan-result":
                assert body is not None
                if body["scan_id"] in results:  # a duplicate within the batch
                    report.results_duplicate += 1
                results.setdefault(body["scan_id"], {"dt": dt, "body": body, "raw": msg.payload})
            elif dt.command_response is not None:
                assert body is not None
                responses.append((dt, body, msg.correlation, msg.payload))
            else:
                state.append((dt, body, msg.payload))
        self._ensure_devices(session, prefixes)
        # keys first: an info and a result in one batch
        for dt, body, _raw in state:
            if dt.kind == "info" and body is not None:
                self.registry.learn(session, dt.prefix, body)
        for dt, body, raw in state:
            self._state(session, dt, body, raw, report)
            report.state_updates += 1
        if results:
            self._results(session, results, report)
        for dt, body, corr, raw in responses:
            self._response(session, dt, body, corr, raw, report)
            report.responses += 1
        return report

    # -- parsing ------------------------------------------------------------------------

    def _parse(
        self, session: Session, msg: Incoming, report: WriteReport
    ) -> tuple[DeviceTopic, str, dict[str, Any] | None] | None:
        dt = self.filter.parse(msg.topic)
        if dt is None:
            self.reject(session, msg, "topic not under the device filter", report)
            return None
        if dt.kind == RESULT_KIND:
            kind = "scan-result"
        elif dt.kind in STATE_KINDS:
            kind = dt.kind
        elif dt.command_response is not None:
            kind = f"cmd-{dt.command_response}-response"
        else:
            self.reject(session, msg, f"unexpected kind {dt.kind!r}", report)
            return None
        if not msg.payload:
            if dt.kind in STATE_KINDS:  # a retained message being cleared
                return dt, kind, None
            self.reject(session, msg, "empty payload", report)
            return None
        try:
            body = json.loads(msg.payload)
        except (UnicodeDecodeError, ValueError) as err:
            self.reject(session, msg, f"not JSON: {err}", report)
            return None
        if not isinstance(body, dict):
            self.reject(session, msg, "not a JSON object", report)
            return None
        try:
            if kind in messages.KINDS:
                check(kind, body)
            elif body.get("ok") is False:  # a command this contract version lacks: its error
                check("cmd-error-response", body)
            elif body.get("ok") is not True or not isinstance(body.get("result"), dict):
                raise ContractViolation("(message)", "response needs ok and a result object")
        except ContractViolation as err:
            self.reject(session, msg, f"schema {kind}: {err}", report)
            return None
        return dt, kind, body

    def reject(self, session: Session, msg: Incoming, reason: str, report: WriteReport) -> None:
        report.rejected += 1
        log.warning("rejected message on %s: %s", msg.topic[:200], reason[:200])
        session.add(
            RejectedMessage(
                received_at=utcnow(),
                topic=msg.topic[:300],
                reason=reason[:300],
                payload=msg.payload[:REJECTED_KEEP].decode("utf-8", "replace"),
            )
        )

    # -- devices and state --------------------------------------------------------------

    def _ensure_devices(
        self, session: Session, prefixes: dict[str, tuple[str | None, str | None]]
    ) -> None:
        if not prefixes:
            return
        rows = [
            {"prefix": p, "post": post, "device": dev}
            for p, (post, dev) in sorted(prefixes.items())
        ]
        session.execute(insert_ignore(session, Device, ["prefix"]), rows)

    def _state(
        self,
        session: Session,
        dt: DeviceTopic,
        body: dict[str, Any] | None,
        raw: bytes,
        report: WriteReport,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {"last_seen": now}
        text = json.dumps(body, separators=(",", ":")) if body is not None else None
        if dt.kind in ("status", "alarm"):
            # an empty payload (a retained message deleted) is signed by nobody
            sig = self.registry.signature_state(dt.prefix, body, session)[0] if body else "unsigned"
            values[f"{dt.kind}_signature"] = sig
        if dt.kind == "status":
            values["status"] = body.get("state") if body else None
            values["status_time"] = parse_time(body["time"]) if body and "time" in body else now
        elif dt.kind == "info":
            values["info"] = text
            if body is not None:
                values.update(post=body.get("post"), device=body.get("device"))
                key = body.get("public_key")
                values["announced_key_id"] = key.get("key_id") if isinstance(key, dict) else None
        elif dt.kind == "health":
            values["health"] = text
        elif dt.kind == "alarm":
            if values["alarm_signature"] == "valid":
                assert body is not None
                values["alarm"] = text  # the last validly signed alarm
                self._alarm_state(session, dt.prefix, body)
            else:  # raises nothing, clears nothing: kept flagged for whoever looks into it
                self.reject(
                    session,
                    Incoming(f"{dt.prefix}/{dt.kind}", raw, retain=True),
                    f"alarm not applied: signature {values['alarm_signature']}",
                    report,
                )
        session.execute(update(Device).where(Device.prefix == dt.prefix).values(**values))

    def _alarm_state(self, session: Session, prefix: str, body: dict[str, Any]) -> None:
        scan_id = body.get("scan_id")
        if not scan_id:
            return
        if body.get("active"):
            sub = body.get("substance") or {}
            session.execute(
                insert_ignore(session, Alarm, ["scan_id"]),
                [
                    {
                        "scan_id": scan_id,
                        "prefix": prefix,
                        "raised_at": parse_time(body["time"]),
                        "substance": sub.get("name"),
                        "consignment": body.get("consignment"),
                        "state": "open",
                    }
                ],
            )
            return
        # the device cleared the alarm of scan_id: that is its confirmation
        self._confirm(
            session,
            Alarm.scan_id == scan_id,
            prefix,
            by=body.get("acknowledged_by"),
            how="alarm cleared (retained alarm)",
        )

    def _confirm(
        self, session: Session, where: Any, prefix: str, *, by: str | None, how: str
    ) -> None:
        alarm = session.execute(
            select(Alarm).where(
                where, Alarm.prefix == prefix, Alarm.state.in_(("open", "ack_sent"))
            )
        ).scalar_one_or_none()
        if alarm is None:
            return
        done = session.execute(
            update(Alarm)
            .where(Alarm.id == alarm.id, Alarm.state.in_(("open", "ack_sent")))
            .values(state="acknowledged", confirmed_at=utcnow(), confirmed_by=by)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            audit.append(
                session,
                actor=f"device:{prefix}",
                action="alarm_ack_confirmed",
                target=alarm.scan_id,
                detail={"acknowledged_by": by, "requested_by": alarm.ack_requested_by, "via": how},
            )

    # -- results ------------------------------------------------------------------------

    def _results(
        self, session: Session, results: dict[str, dict[str, Any]], report: WriteReport
    ) -> None:
        order = sorted(results)  # scan_id order: concurrent writers never deadlock
        # keys not approved in the cache are re-read first (one session, this thread); the
        # Ed25519 checks then run on a small pool (the library releases the GIL)
        for scan_id in order:
            dt, body = results[scan_id]["dt"], results[scan_id]["body"]
            sig = body.get("signature") or {}
            known = self.registry.get(dt.prefix, str(sig.get("key_id")))
            if known is None or known.state != "approved":
                self.registry.refresh(session, dt.prefix, str(sig.get("key_id")))
        states = list(
            self._pool.map(
                lambda sid: self.registry.signature_state(
                    results[sid]["dt"].prefix, results[sid]["body"]
                ),
                order,
            )
        )
        rows = [
            _result_row(results[sid]["dt"], results[sid]["body"], sig, results[sid]["raw"])
            for sid, sig in zip(order, states, strict=True)
        ]
        stmt = insert_ignore(session, Result, ["scan_id"]).returning(Result.id, Result.scan_id)
        inserted = session.execute(stmt, rows).all()
        report.results_new += len(inserted)
        report.results_duplicate += len(rows) - len(inserted)
        new_ids = {scan_id: rid for rid, scan_id in inserted}
        report.new_result_ids = sorted(new_ids.values())
        if new_ids:
            report.max_result_id = max(new_ids.values())
        alarms = []
        for scan_id in sorted(new_ids):
            body = results[scan_id]["body"]
            if is_alarm_result(body):
                sub = body.get("substance") or {}
                alarms.append(
                    {
                        "scan_id": scan_id,
                        "prefix": results[scan_id]["dt"].prefix,
                        "raised_at": parse_time(body["time"]),
                        "substance": sub.get("name")
                        or next(
                            (
                                m.get("name")
                                for m in body["mixture"]
                                if m.get("severity") == "alarm"
                            ),
                            None,
                        ),
                        "consignment": body.get("consignment"),
                        "state": "open",
                    }
                )
        if alarms:
            ids = session.execute(
                insert_ignore(session, Alarm, ["scan_id"]).returning(Alarm.id), alarms
            ).all()
            report.new_alarm_ids = [i for (i,) in ids]

    # -- command responses --------------------------------------------------------------

    def _response(
        self,
        session: Session,
        dt: DeviceTopic,
        body: dict[str, Any],
        corr: bytes | None,
        raw: bytes,
        report: WriteReport,
    ) -> None:
        name = dt.command_response
        correlation = corr.decode("ascii", "replace") if corr else None
        result = body.get("result") or {}
        if name in ACTED_ON_RESPONSES:
            # a response changes what the console records only when the device signed it:
            # a forged "no such alarm", spectrum or "replay: nothing left" is kept flagged
            sig = self.registry.signature_state(dt.prefix, body, session)[0]
            if sig != "valid":
                self.reject(
                    session,
                    Incoming(f"{dt.prefix}/{dt.kind}", raw),
                    f"{name} response not applied: signature {sig}",
                    report,
                )
                return
        if name == "ack":
            where = (
                Alarm.ack_correlation == correlation
                if correlation
                else Alarm.scan_id == result.get("scan_id")
            )
            if body.get("ok") and result.get("cleared"):
                # the device's signed retained alarm is what confirms the clearing
                self._note(
                    session, where, dt.prefix, "device answered: cleared; awaiting its alarm"
                )
            else:
                why = (body.get("error") or {}).get("message") or "device held no such alarm"
                self._not_active(session, where, dt.prefix, why)
        elif name == "replay":
            self._replay_answer(session, dt.prefix, body)
        elif name == "get_spectrum" and body.get("ok"):
            session.execute(
                insert_ignore(session, Spectrum, ["scan_id"]),
                [
                    {
                        "scan_id": result["scan_id"],
                        "kind": result.get("kind", "processed"),
                        "x_unit": result.get("x_unit"),
                        "y_unit": result.get("y_unit"),
                        "x": json.dumps(result["x"]),
                        "y": json.dumps(result["y"]),
                        "fetched_at": utcnow(),
                    }
                ],
            )

    def _note(self, session: Session, where: Any, prefix: str, note: str) -> None:
        session.execute(
            update(Alarm)
            .where(where, Alarm.prefix == prefix, Alarm.state == "ack_sent")
            .values(note=note[:300])
        )

    def _not_active(self, session: Session, where: Any, prefix: str, why: str) -> None:
        alarm = session.execute(
            select(Alarm).where(where, Alarm.prefix == prefix, Alarm.state == "ack_sent")
        ).scalar_one_or_none()
        if alarm is None:
            return
        done = session.execute(
            update(Alarm)
            .where(Alarm.id == alarm.id, Alarm.state == "ack_sent")
            .values(state="not_active", confirmed_at=utcnow(), note=why[:300])
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            audit.append(
                session,
                actor=f"device:{prefix}",
                action="alarm_ack_not_applied",
                target=alarm.scan_id,
                outcome="refused",
                detail={"reason": why, "requested_by": alarm.ack_requested_by},
            )

    def _replay_answer(self, session: Session, prefix: str, body: dict[str, Any]) -> None:
        result = body.get("result") or {}
        if not body.get("ok") or not result:
            return
        lo, hi = result.get("from_seq"), result.get("to_seq")
        if not isinstance(lo, int) or not isinstance(hi, int):
            return
        if int(result.get("sent", 0)) == 0:  # the archive holds none of them any more
            session.execute(
                update(SeqGap)
                .where(
                    SeqGap.prefix == prefix,
                    SeqGap.state == "open",
                    SeqGap.from_seq >= lo,
                    SeqGap.to_seq <= hi,
                )
                .values(state="lost", closed_at=utcnow())
            )
