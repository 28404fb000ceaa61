"""Noticing missing ``seq`` numbers and asking devices to ``replay`` them.

Each device numbers its results (``seq``, monotonic, persisted). Every second the watcher
looks, per device, at the results stored above the device's ``seq_contiguous`` (everything at
or below it is stored or written off) and finds the missing numbers between them. Results
arrive out of order after a reconnect, so a gap is only acted on after a grace time; then
``replay {"from_seq", "to_seq"}`` is sent to the device, again after a retry interval, up
to a limit, after which the gap is written off as ``lost`` (still shown). A device's answer
that it holds none of them any more writes the gap off at once. Works on the database,
so any number of ingesters sharing the results see the same gaps; a conditional update
makes sure only one of them sends each request.

The first result seen of a device sets its starting point: earlier numbers are not claimed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from controlroom.audit import utcnow
from controlroom.commands import CommandSender, new_correlation
from controlroom.db import Database
from controlroom.db.schema import Device, Result, SeqGap
from controlroom.db.upsert import insert_ignore
from controlroom.errors import ControlRoomError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GapPolicy:
    """Timing of replay requests."""

    interval_s: float = 1.0
    grace_s: float = 2.0
    retry_s: float = 15.0
    max_requests: int = 5
    #: Longest range asked for in one request (a longer gap is asked for in parts).
    max_span: int = 500


def missing_runs(start: int, seqs: list[int]) -> list[tuple[int, int]]:
    """Runs ``(from, to)`` of numbers above *start* and below max(*seqs*) not in *seqs*."""
    runs: list[tuple[int, int]] = []
    expect = start + 1
    for s in sorted(set(seqs)):
        if s < expect:
            continue
        if s > expect:
            runs.append((expect, s - 1))
        expect = s + 1
    return runs


class GapWatcher:
    """Finds gaps and sends replay requests; :meth:`tick` is one pass (tests call it)."""

    def __init__(
        self, db: Database, sender: CommandSender, policy: GapPolicy | None = None
    ) -> None:
        self.db = db
        self.sender = sender
        self.policy = policy or GapPolicy()
        self.requests_sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run :meth:`tick` every ``policy.interval_s`` on a thread."""
        self._thread = threading.Thread(target=self._run, name="console-gaps", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.policy.interval_s):
            try:
                self.tick()
            except Exception:  # the next pass tries again
                log.exception("gap watcher pass failed")

    def tick(self) -> None:
        """Update the gaps of every device, then send the replay requests that are due."""
        with self.db.session() as s:
            prefixes = [p for (p,) in s.execute(select(Device.prefix).order_by(Device.prefix))]
        for prefix in prefixes:
            with self.db.session() as s:
                self._scan_device(s, prefix)
        self._request_due()

    def _scan_device(self, s: Session, prefix: str) -> None:
        dev = s.execute(select(Device).where(Device.prefix == prefix)).scalar_one()
        start = dev.seq_contiguous
        if start is None:
            first = s.execute(
                select(Result.seq).where(Result.prefix == prefix).order_by(Result.seq).limit(1)
            ).scalar_one_or_none()
            if first is None:
                return
            start = first - 1
        seqs = list(
            s.execute(
                select(Result.seq).where(Result.prefix == prefix, Result.seq > start)
            ).scalars()
        )
        now = utcnow()
        runs = missing_runs(start, seqs)
        # gaps that were open but are now stored are filled
        open_gaps = s.execute(
            select(SeqGap).where(SeqGap.prefix == prefix, SeqGap.state == "open")
        ).scalars()
        missing: set[int] = set()
        for lo, hi in runs:
            missing.update(range(lo, min(hi, lo + 100_000) + 1))
        for gap in open_gaps:
            if not any(n in missing for n in range(gap.from_seq, gap.to_seq + 1)):
                gap.state = "filled"
                gap.closed_at = now
        for lo, hi in runs:
            for part_lo in range(lo, hi + 1, self.policy.max_span):
                part_hi = min(hi, part_lo + self.policy.max_span - 1)
                s.execute(
                    insert_ignore(s, SeqGap, ["prefix", "from_seq"]),
                    [
                        {
                            "prefix": prefix,
                            "from_seq": part_lo,
                            "to_seq": part_hi,
                            "detected_at": now,
                            "state": "open",
                            "requests": 0,
                        }
                    ],
                )
        s.flush()
        # contiguous: up to the first number still missing and not written off
        lost = {
            (g.from_seq, g.to_seq)
            for g in s.execute(
                select(SeqGap).where(SeqGap.prefix == prefix, SeqGap.state == "lost")
            ).scalars()
        }
        contiguous = max(seqs, default=start)
        for lo, hi in runs:
            if not any(a <= lo and hi <= b for a, b in lost):
                contiguous = lo - 1
                break
        dev.seq_contiguous = max(start, contiguous)
        dev.seq_high = max(seqs, default=dev.seq_high or start)

    def _request_due(self) -> None:
        p = self.policy
        now = utcnow()
        with self.db.session() as s:
            due = list(
                s.execute(
                    select(SeqGap).where(
                        SeqGap.state == "open",
                        SeqGap.detected_at <= now - timedelta(seconds=p.grace_s),
                        or_(
                            SeqGap.last_request_at.is_(None),
                            SeqGap.last_request_at <= now - timedelta(seconds=p.retry_s),
                        ),
                    )
                ).scalars()
            )
        for gap in due:
            with self.db.session() as s:
                if gap.requests >= p.max_requests:
                    s.execute(
                        update(SeqGap)
                        .where(SeqGap.id == gap.id, SeqGap.state == "open")
                        .values(state="lost", closed_at=now)
                    )
                    log.warning(
                        "seq %d-%d of %s written off after %d replay requests",
                        gap.from_seq,
                        gap.to_seq,
                        gap.prefix,
                        gap.requests,
                    )
                    continue
                claimed = s.execute(  # only one ingester sends each request
                    update(SeqGap)
                    .where(SeqGap.id == gap.id, SeqGap.requests == gap.requests)
                    .values(requests=gap.requests + 1, last_request_at=now)
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
            try:
                self.sender.send(
                    gap.prefix,
                    "replay",
                    {"from_seq": gap.from_seq, "to_seq": gap.to_seq},
                    correlation=new_correlation(),
                )
                self.requests_sent += 1
                log.info("asked %s to replay seq %d-%d", gap.prefix, gap.from_seq, gap.to_seq)
            except ControlRoomError as err:
                log.warning("replay request to %s not sent: %s", gap.prefix, err)
