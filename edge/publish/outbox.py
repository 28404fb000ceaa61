"""Durable outbox: every message is committed to SQLite before it is published.

Rows are deleted only once the broker acknowledged them (PUBACK), so a process killed at
any instant, a power cut or a broker restart loses nothing; at worst a message is sent
twice (subscribers deduplicate on ``scan_id``).

Durability choices: WAL journal with ``synchronous=FULL`` for submissions (the default),
because a result is the product's whole point and must survive a power cut, not only a
crash; each submission costs one fsync of the WAL (~0.2 ms on an SSD, far below the scan
rate). ``synchronous="NORMAL"`` survives a killed process but may lose the last commits
on a power cut; it is offered for benchmarks and hosts with a battery-backed disk. Delivery
marks are committed in batches without an fsync; losing one only means a duplicate.

Bounded: at ``max_messages`` the oldest non-alarm rows are dropped (counted in
``dropped``); alarm rows are never dropped, even if that means exceeding the bound. A
corrupt database file is moved aside with an error log and a fresh one is started.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from edge.errors import OutboxError
from edge.lifecycle import Deadline, Worker
from edge.store.sqlite_files import (
    check_integrity,
    is_corruption,
    is_disk_full,
    move_aside,
    readable_copy,
    release_reserve,
)

log = logging.getLogger(__name__)

FILE_NAME = "outbox.sqlite3"
#: Period of the background WAL checkpoint, s.
CHECKPOINT_INTERVAL_S = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL DEFAULT 1,
    alarm INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    key TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_kind ON messages (alarm, id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('dropped', 0), ('delivered', 0);
INSERT OR IGNORE INTO meta VALUES ('dead_letters', 0);
INSERT OR IGNORE INTO meta SELECT 'count', count(*) FROM messages;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    topic BLOB,
    payload BLOB,
    alarm INTEGER,
    created REAL,
    reason TEXT NOT NULL,
    moved REAL NOT NULL
);
"""

#: Added after the first release: the checksum of topic and payload (NULL in older rows).
_MIGRATIONS = ("ALTER TABLE messages ADD COLUMN checksum INTEGER",)


def row_checksum(topic: str, payload: bytes) -> int:
    """CRC-32 over topic and payload, checked before a row is sent (catches any bit flip)."""
    return zlib.crc32(payload, zlib.crc32(topic.encode("utf-8") + b"\x00"))


@dataclass(frozen=True)
class SubmitItem:
    """One message to commit; *build(seq)* returns its payload."""

    topic: str
    build: Callable[[int], bytes]
    alarm: bool = False
    key: str | None = None
    qos: int = 1


@dataclass(frozen=True)
class OutboxRow:
    """One queued message."""

    id: int
    topic: str
    payload: bytes
    qos: int
    alarm: bool
    created: float
    key: str | None


@dataclass(frozen=True)
class OutboxStats:
    """What waits in the outbox."""

    waiting: int
    alarms_waiting: int
    oldest_created: float | None
    dropped: int
    delivered: int
    next_seq: int
    max_messages: int
    path: str
    dead_letters: int = 0
    #: Where a corrupt outbox file was moved at open (None: it never happened).
    quarantined: str | None = None

    def for_health(self, now: float | None = None) -> dict[str, int | float | str | None]:
        """The ``outbox`` member of the ``health`` message."""
        now = time.time() if now is None else now
        age = None if self.oldest_created is None else max(0.0, now - self.oldest_created)
        return {
            "waiting": self.waiting,
            "alarms_waiting": self.alarms_waiting,
            "dropped": self.dropped,
            "oldest_age_s": age,
            "dead_letters": self.dead_letters,
            "quarantined": self.quarantined,
        }


class Outbox:
    """SQLite-backed FIFO of messages awaiting a broker acknowledgement.

    Thread-safe (one connection behind a lock); several processes may share the file.
    """

    def __init__(
        self,
        path: Path,
        max_messages: int = 100_000,
        *,
        synchronous: str = "FULL",
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be 'FULL' (power-cut safe) or 'NORMAL'")
        self.path = Path(path)
        self.max_messages = max_messages
        self.synchronous = synchronous
        self.checkpoint_interval_s = checkpoint_interval_s
        self._lock = threading.RLock()  # the write connection
        self._db: sqlite3.Connection | None = None
        # Reads go through a second connection: in WAL mode they proceed while a writer
        # waits for its fsync, so the sender never stalls behind a submission.
        self._rlock = threading.Lock()
        self._rdb: sqlite3.Connection | None = None
        self._checkpointer: Worker | None = None
        self.recovered_from: Path | None = None  # where a corrupt file was moved, if any
        self.recovered_rows = 0  # rows read back from that file into the fresh one
        #: Why the last row was moved to the dead letters (for ``health.last_error``).
        self.last_dead_letter: str | None = None
        self._open()

    @classmethod
    def for_data_dir(cls, data_dir: Path, max_messages: int = 100_000) -> Outbox:
        """The outbox of a device, ``<data_dir>/outbox.sqlite3``."""
        return cls(Path(data_dir) / FILE_NAME, max_messages)

    # -- opening and recovery -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("outbox %s: journal_mode is %s, not WAL", self.path, mode)
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            # checkpoints run on their own thread (see _checkpoint_loop), never inside a
            # submission or a delivery mark, where their fsync would stall the pipeline
            db.execute("PRAGMA wal_autocheckpoint = 0")
            db.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
            check_integrity(db)
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
            if "checksum" not in columns:
                db.execute(_MIGRATIONS[0])
        except BaseException:
            db.close()
            raise
        return db

    def _connect_with_room(self) -> sqlite3.Connection:
        """:meth:`_connect`; on a full disk, once more after releasing the space reserve."""
        try:
            return self._connect()
        except sqlite3.Error as err:
            if not (is_disk_full(err, self.path) and release_reserve(self.path.parent)):
                raise
            log.error("outbox %s: disk full; released the space reserve to open", self.path)
            return self._connect()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutboxError(f"outbox directory {self.path.parent}: {err}") from err
        try:
            self._db = self._connect_with_room()
            self._open_reader()
            return
        except sqlite3.Error as err:
            # only a damaged file is moved aside: a full disk, a read-only file system or a
            # lock is reported as what it is, and the file is left alone
            if is_disk_full(err, self.path):
                raise OutboxError(f"outbox {self.path}: disk full: {err}") from err
            if not is_corruption(err):
                raise OutboxError(f"outbox {self.path}: {err}") from err
            self.recovered_from = self._move_aside(err)
        try:
            self._db = self._connect()
        except sqlite3.Error as err:
            raise OutboxError(f"outbox {self.path}: cannot start a fresh database: {err}") from err
        self._open_reader()
        self.recovered_rows = self._recover(self.recovered_from)

    def _recover(self, aside: Path) -> int:
        """Copy every readable waiting row of a quarantined file into this one, in order."""
        rows: list[tuple[Any, ...]] = []
        next_seq = 0
        try:
            with readable_copy(aside) as old:
                with contextlib.suppress(sqlite3.Error, TypeError, ValueError):
                    row = old.execute("SELECT value FROM meta WHERE name='next_seq'").fetchone()
                    next_seq = int(row[0]) if row else 0
                cur = old.execute(
                    "SELECT CAST(topic AS BLOB), payload, qos, alarm, created, "
                    "CAST(key AS BLOB) FROM messages ORDER BY id"
                )
                while True:
                    try:
                        row = cur.fetchone()
                    except sqlite3.DatabaseError as err:  # a damaged page: keep what we have
                        log.error("outbox recovery stopped at a damaged page: %s", err)
                        break
                    if row is None:
                        break
                    rows.append(row)
        except (sqlite3.Error, OSError) as err:
            log.error("OUTBOX: nothing recoverable in %s (%s)", aside, err)
            return 0
        good = []
        for topic, payload, qos, alarm, created, key in rows:
            checked = _decode_row(topic, payload, key, None)
            if checked is None:
                continue
            topic_s, payload_b, key_s = checked
            good.append(
                (
                    topic_s,
                    payload_b,
                    int(qos),
                    int(alarm),
                    float(created),
                    key_s,
                    row_checksum(topic_s, payload_b),
                )
            )
        with self._lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(
                        "INSERT INTO messages (topic, payload, qos, alarm, created, key, checksum)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        good,
                    )
                    db.execute("UPDATE meta SET value=value+? WHERE name='count'", (len(good),))
                    # seq stays monotonic when the old counter could be read
                    db.execute(
                        "UPDATE meta SET value=max(value, ?) WHERE name='next_seq'", (next_seq,)
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot recover rows: {err}") from err
        alarms = sum(1 for row in good if row[3])
        log.error(
            "OUTBOX: recovered %d waiting message(s) (%d alarm(s)) of %d from %s",
            len(good),
            alarms,
            len(rows),
            aside,
        )
        return len(good)

    def _start_checkpointer(self) -> None:
        self._checkpointer = Worker("outbox-checkpoint", self._checkpoint_loop)
        self._checkpointer.start()

    def _checkpoint_loop(self, stopping: threading.Event) -> None:
        """Copy the WAL into the database file every second (PASSIVE: never blocks others)."""
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.Error as err:
            log.error("outbox %s: no checkpointer (%s); the WAL will grow", self.path, err)
            return
        try:
            while not stopping.wait(self.checkpoint_interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as err:
                    log.warning("outbox %s: checkpoint failed: %s", self.path, err)
        finally:
            db.close()

    def _open_reader(self) -> None:
        try:
            rdb = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            rdb.execute("PRAGMA query_only = 1")
            rdb.execute("PRAGMA busy_timeout = 10000")
        except sqlite3.Error as err:
            raise OutboxError(f"outbox {self.path}: cannot open a reader: {err}") from err
        self._rdb = rdb
        self._start_checkpointer()

    def _move_aside(self, err: Exception) -> Path:
        try:
            target = move_aside(self.path)
        except OSError as move_err:
            raise OutboxError(
                f"outbox {self.path} is corrupt ({err}) and cannot be moved aside: {move_err}"
            ) from move_err
        log.error(
            "OUTBOX CORRUPT: %s (%s); moved to %s and started a fresh outbox. "
            "Undelivered results may be in the old file.",
            self.path,
            err,
            target,
        )
        return target

    @property
    def db(self) -> sqlite3.Connection:
        """The write connection (hold ``_lock``)."""
        if self._db is None:
            raise OutboxError(f"outbox {self.path} is closed")
        return self._db

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The read connection under its lock; an SQLite error becomes an :class:`OutboxError`."""
        with self._rlock:
            if self._rdb is None:
                raise OutboxError(f"outbox {self.path} is closed")
            try:
                yield self._rdb
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot read: {err}") from err

    def close(self, deadline: float | Deadline = 10.0) -> None:
        """Stop the checkpointer (joined until *deadline*) and close the database; idempotent."""
        if self._checkpointer is not None:
            self._checkpointer.stop(deadline)
            self._checkpointer = None
        with self._lock, self._rlock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._rdb is not None:
                self._rdb.close()
                self._rdb = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------------

    def submit(
        self,
        topic: str,
        payload: bytes,
        *,
        alarm: bool = False,
        key: str | None = None,
        qos: int = 1,
    ) -> int:
        """Commit one message; return its row id (the delivery order)."""
        row_id, _ = self.submit_sequenced(
            topic, lambda _seq: payload, alarm=alarm, key=key, qos=qos
        )
        return row_id

    def submit_sequenced(
        self,
        topic: str,
        build: Callable[[int], bytes],
        *,
        alarm: bool = False,
        key: str | None = None,
        qos: int = 1,
    ) -> tuple[int, int]:
        """Allocate the next ``seq``, build the payload with it, commit both atomically.

        Returns ``(row id, seq)``. ``seq`` is persisted, so it stays monotonic across
        restarts (it restarts at 1 only if a corrupt database had to be replaced).
        """
        return self.submit_batch([SubmitItem(topic, build, alarm, key, qos)])[0]

    def submit_batch(self, items: Sequence[SubmitItem]) -> list[tuple[int, int]]:
        """Commit several messages in one transaction (one fsync): group commit.

        Each item gets the next ``seq``; returns ``(row id, seq)`` per item, in order.
        All or nothing: if one payload fails to build, none is committed.

        Payloads are built (signed) *before* the write transaction, with the seqs expected
        then, so the database is not locked while the CPU works; if another writer took
        those seqs meanwhile, they are rebuilt inside the transaction (rare).
        """
        if not items:
            return []
        expected = self._next_seq()
        payloads = [item.build(expected + i) for i, item in enumerate(items)]
        with self._lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    first = int(
                        db.execute("SELECT value FROM meta WHERE name='next_seq'").fetchone()[0]
                    )
                    if first != expected:
                        payloads = [item.build(first + i) for i, item in enumerate(items)]
                    now = time.time()
                    db.executemany(
                        "INSERT INTO messages (topic, payload, qos, alarm, created, key, "
                        "checksum) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                item.topic,
                                payload,
                                item.qos,
                                int(item.alarm),
                                now,
                                item.key,
                                row_checksum(item.topic, payload),
                            )
                            for item, payload in zip(items, payloads, strict=True)
                        ],
                    )
                    # AUTOINCREMENT under our write lock: the new ids are consecutive
                    last = int(db.execute("SELECT last_insert_rowid()").fetchone()[0])
                    start = last - len(items) + 1
                    out = [(start + n, first + n) for n in range(len(items))]
                    db.execute("UPDATE meta SET value=value+? WHERE name='count'", (len(items),))
                    self._trim(db)
                    db.execute(
                        "UPDATE meta SET value=? WHERE name='next_seq'", (first + len(items),)
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot commit a message: {err}") from err
        return out

    def submit_resend(self, messages: Sequence[tuple[str, bytes, bool, str | None]]) -> int:
        """Commit already-built messages ``(topic, payload, alarm, key)`` again, in one
        transaction, *without* allocating a ``seq`` (a resend keeps the seq it was signed
        with, so no gap appears); returns how many were queued."""
        if not messages:
            return 0
        with self._lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    now = time.time()
                    db.executemany(
                        "INSERT INTO messages (topic, payload, qos, alarm, created, key, "
                        "checksum) VALUES (?, ?, 1, ?, ?, ?, ?)",
                        [
                            (topic, payload, int(alarm), now, key, row_checksum(topic, payload))
                            for topic, payload, alarm, key in messages
                        ],
                    )
                    db.execute("UPDATE meta SET value=value+? WHERE name='count'", (len(messages),))
                    self._trim(db)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot commit a resend: {err}") from err
        return len(messages)

    def payload_by_key(self, key: str) -> bytes | None:
        """The payload of a waiting message stored with *key* (a result's scan_id), or None."""
        with self._reading() as rdb:
            row = rdb.execute(
                "SELECT payload FROM messages WHERE key = ? ORDER BY id LIMIT 1", (key,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def _next_seq(self) -> int:
        with self._reading() as rdb:
            row = rdb.execute("SELECT value FROM meta WHERE name='next_seq'").fetchone()
        return int(row[0])

    def _trim(self, db: sqlite3.Connection) -> None:
        """Drop the oldest non-alarm rows beyond the bound (transaction held)."""
        count = int(db.execute("SELECT value FROM meta WHERE name='count'").fetchone()[0])
        excess = count - self.max_messages
        if excess <= 0:
            return
        cur = db.execute(
            "DELETE FROM messages WHERE id IN "
            "(SELECT id FROM messages WHERE alarm=0 ORDER BY id LIMIT ?)",
            (excess,),
        )
        if cur.rowcount:
            db.execute("UPDATE meta SET value=value+? WHERE name='dropped'", (cur.rowcount,))
            db.execute("UPDATE meta SET value=value-? WHERE name='count'", (cur.rowcount,))
            log.warning(
                "outbox full (%d): dropped %d oldest non-alarm message(s)",
                self.max_messages,
                cur.rowcount,
            )
        if cur.rowcount < excess:
            log.warning(
                "outbox over its bound (%d) with alarms only; alarms are never dropped",
                self.max_messages,
            )

    def mark_delivered(self, ids: Iterable[int], *, wait: bool = True) -> int | None:
        """Delete acknowledged rows (one transaction); return how many were removed.

        With ``wait=False`` return None at once, doing nothing, when a submission holds the
        write connection (the caller keeps the ids for its next try).
        """
        batch = [(int(i),) for i in ids]
        if not batch:
            return 0
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            return self._delete(batch)
        finally:
            self._lock.release()

    def _delete(self, batch: list[tuple[int]]) -> int:
        with self._lock:
            db = self.db
            try:
                # A lost delivery mark only means a duplicate, so this commit skips the
                # fsync (the next FULL commit of a submission makes it durable anyway).
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("BEGIN IMMEDIATE")
                try:
                    before = db.total_changes
                    db.executemany("DELETE FROM messages WHERE id=?", batch)
                    removed = db.total_changes - before
                    db.execute("UPDATE meta SET value=value+? WHERE name='delivered'", (removed,))
                    db.execute("UPDATE meta SET value=value-? WHERE name='count'", (removed,))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                finally:
                    db.execute(f"PRAGMA synchronous = {self.synchronous}")
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot mark delivered: {err}") from err
            return removed

    # -- reading ----------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_id: int = 0) -> list[OutboxRow]:
        """Up to *limit* waiting messages with id > *after_id*, oldest first.

        A row that cannot be decoded or fails its checksum is moved to the dead letters
        (counted, reported in ``health``) and delivery goes on with the next one.
        """
        with self._reading() as rdb:
            rows = rdb.execute(
                "SELECT id, CAST(topic AS BLOB), payload, qos, alarm, created, "
                "CAST(key AS BLOB), checksum FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        good: list[OutboxRow] = []
        bad: list[tuple[int, str]] = []
        for rid, topic, payload, qos, alarm, created, key, checksum in rows:
            checked = _decode_row(topic, payload, key, checksum)
            if checked is None or qos not in (0, 1, 2) or not isinstance(created, float | int):
                bad.append((int(rid), "undecodable or checksum mismatch"))
                continue
            good.append(
                OutboxRow(rid, checked[0], checked[1], qos, bool(alarm), created, checked[2])
            )
        if bad:
            self._dead_letter(bad)
        return good

    def _dead_letter(self, bad: list[tuple[int, str]]) -> None:
        """Move rows that cannot be sent out of the queue, keeping them for inspection."""
        with self._lock:
            db = self.db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    now = time.time()
                    for rid, reason in bad:
                        db.execute(
                            "INSERT OR REPLACE INTO dead_letters "
                            "(id, topic, payload, alarm, created, reason, moved) "
                            "SELECT id, CAST(topic AS BLOB), CAST(payload AS BLOB), alarm, "
                            "created, ?, ? FROM messages WHERE id=?",
                            (reason, now, rid),
                        )
                        removed = db.execute("DELETE FROM messages WHERE id=?", (rid,)).rowcount
                        db.execute("UPDATE meta SET value=value-? WHERE name='count'", (removed,))
                        db.execute(
                            "UPDATE meta SET value=value+? WHERE name='dead_letters'", (removed,)
                        )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise OutboxError(
                    f"outbox {self.path}: cannot move a bad row aside: {err}"
                ) from err
        ids = ", ".join(str(rid) for rid, _ in bad)
        self.last_dead_letter = f"outbox: row(s) {ids} moved to dead letters ({bad[0][1]})"
        log.error("%s", self.last_dead_letter)

    def count_of(self, ids: Iterable[int]) -> int:
        """How many of the rows *ids* are still waiting."""
        wanted = sorted({int(i) for i in ids})
        total = 0
        with self._reading() as rdb:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                total += int(
                    rdb.execute(
                        f"SELECT count(*) FROM messages WHERE id IN ({marks})", chunk
                    ).fetchone()[0]
                )
        return total

    def last_id(self) -> int:
        """Highest row id ever allocated (0 when none)."""
        with self._reading() as rdb:
            row = rdb.execute("SELECT seq FROM sqlite_sequence WHERE name='messages'").fetchone()
        return int(row[0]) if row else 0

    def __len__(self) -> int:
        with self._reading() as rdb:
            return int(rdb.execute("SELECT count(*) FROM messages").fetchone()[0])

    def stats(self) -> OutboxStats:
        """Counts for ``outbox status`` and the ``health`` message."""
        with self._reading() as rdb:
            waiting, alarms, oldest = rdb.execute(
                "SELECT count(*), coalesce(sum(alarm), 0), min(created) FROM messages"
            ).fetchone()
            meta = dict(rdb.execute("SELECT name, value FROM meta").fetchall())
        return OutboxStats(
            waiting=int(waiting),
            alarms_waiting=int(alarms),
            oldest_created=oldest,
            dropped=int(meta.get("dropped", 0)),
            delivered=int(meta.get("delivered", 0)),
            next_seq=int(meta.get("next_seq", 1)),
            max_messages=self.max_messages,
            path=str(self.path),
            dead_letters=int(meta.get("dead_letters", 0)),
            quarantined=None if self.recovered_from is None else str(self.recovered_from),
        )


def _decode_row(
    topic: object, payload: object, key: object, checksum: object
) -> tuple[str, bytes, str | None] | None:
    """``(topic, payload, key)`` of a stored row, or None when it is damaged."""
    if not isinstance(topic, bytes) or not isinstance(payload, bytes):
        return None
    try:
        topic_s = topic.decode("utf-8")
        key_s = None if key is None else key.decode("utf-8") if isinstance(key, bytes) else None
    except (UnicodeDecodeError, TypeError):
        return None
    if not topic_s or "\x00" in topic_s or "+" in topic_s or "#" in topic_s:
        return None
    if checksum is not None and checksum != row_checksum(topic_s, payload):
        return None
    return topic_s, payload, key_s
