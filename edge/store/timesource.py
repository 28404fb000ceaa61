"""Is the wall clock trustworthy? The kernel knows whether NTP (or chrony, or
systemd-timesyncd) has synchronised it: ``adjtimex`` reports ``TIME_ERROR`` when not.

A Raspberry Pi has no battery-backed clock: until the network brings the time it may read
1970, 2001 or the time of the last shutdown. Anything that deletes by age, or orders by wall
time, must ask first. Results carry the answer so the control room can order them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Literal

log = logging.getLogger(__name__)

TimeSource = Literal["synchronised", "unsynchronised"]

#: adjtimex return value when the clock is not synchronised (linux/timex.h).
_TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h): 4 longs of modes/offset..., we only read the return value,
    # but the kernel writes the whole structure: reserve generously
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("reserved", ctypes.c_long * 32),
    ]


@functools.cache
def _adjtimex() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        return libc.adjtimex
    except (OSError, AttributeError):
        return None


def clock_synchronised() -> bool:
    """True when the kernel says the system clock is synchronised (read-only query)."""
    fn = _adjtimex()
    if fn is None:
        return False
    tx = _Timex()  # modes = 0: read only
    state = int(fn(ctypes.byref(tx)))
    return 0 <= state < _TIME_ERROR


def time_source() -> TimeSource:
    """``synchronised`` or ``unsynchronised``, as results report it."""
    return "synchronised" if clock_synchronised() else "unsynchronised"
