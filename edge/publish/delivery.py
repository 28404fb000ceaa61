"""Delivery from one-shot commands (``spectra-edge scan``, ``spectra-edge outbox flush``).

The result is committed to the outbox first; then the command waits a bounded time
(``outbox.flush_timeout_s``) for the broker's acknowledgement. When the broker is
unreachable the result simply stays queued for the service or a later flush.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.config.schema import Config
from edge.identify.result import Identification
from edge.lifecycle import Deadline, SystemClock
from edge.publish.client import MqttLink
from edge.publish.courier import Courier
from edge.publish.outbox import Outbox, OutboxStats
from edge.publish.signing import DeviceKey
from edge.store.data_dir import prepare_data_dir

#: Longest a one-shot command waits for its courier to stop (after the delivery wait), s.
COURIER_STOP_S = 2.0


@dataclass(frozen=True)
class DeliveryReport:
    """Outcome of :func:`deliver_result`."""

    scan_id: str
    seq: int
    delivered: bool
    waiting: int
    payload: dict[str, Any]

    def describe(self) -> str:
        """One line for stderr."""
        if self.delivered:
            return f"result {self.scan_id} (seq {self.seq}) delivered to the broker"
        return (
            f"result {self.scan_id} (seq {self.seq}) queued in the outbox: broker not reached; "
            f"{self.waiting} message(s) wait for `spectra-edge run` or `spectra-edge outbox flush`"
        )


@dataclass(frozen=True)
class FlushReport:
    """Outcome of :func:`flush_outbox`."""

    connected: bool
    delivered: int
    stats: OutboxStats


def open_outbox(cfg: Config) -> Outbox:
    """The device's outbox under ``device.data_dir``."""
    return Outbox.for_data_dir(cfg.device.data_dir, cfg.outbox.max_messages)


def deliver_result(
    cfg: Config,
    identification: Identification,
    *,
    consignment: str | None = None,
    scan_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> DeliveryReport:
    """Commit *identification* as a signed ``scan/result`` and try to deliver it.

    Waits at most *timeout* seconds (default ``outbox.flush_timeout_s``) in total. Never
    raises for an unreachable broker: the report says whether it was delivered or queued.
    """
    budget = cfg.outbox.flush_timeout_s if timeout is None else timeout
    deadline = Deadline(SystemClock(), budget)
    key = DeviceKey.load_or_create(prepare_data_dir(cfg.device.data_dir))
    with open_outbox(cfg) as outbox:
        courier = Courier(
            cfg, MqttLink(cfg, role="oneshot"), outbox, key, live_before_first_connect=True
        )
        courier.start()
        try:
            # durable first (a kill or power cut from here on loses nothing), then deliver
            sub = courier.submit_result(
                identification, scan_id=scan_id, consignment=consignment, extra=extra
            )
            delivered = courier.wait_delivered({sub.row_id}, timeout=deadline.remaining())
        finally:
            courier.stop(COURIER_STOP_S)
        waiting = len(outbox)
    return DeliveryReport(sub.scan_id, sub.seq, delivered, waiting, sub.payload)


def flush_outbox(cfg: Config, timeout: float | None = None) -> FlushReport:
    """Deliver everything queued, waiting at most *timeout* s (default flush_timeout_s)."""
    budget = cfg.outbox.flush_timeout_s if timeout is None else timeout
    deadline = Deadline(SystemClock(), budget)
    key = DeviceKey.load_or_create(prepare_data_dir(cfg.device.data_dir))
    with open_outbox(cfg) as outbox:
        courier = Courier(cfg, MqttLink(cfg, role="oneshot"), outbox, key)
        courier.start()
        try:
            connected = courier.link.wait_connected(deadline.remaining())
            if connected:
                courier.wait_delivered(None, timeout=deadline.remaining())
        finally:
            courier.stop(COURIER_STOP_S)
        return FlushReport(connected, courier.delivered, outbox.stats())
