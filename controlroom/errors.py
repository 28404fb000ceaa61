"""Errors of the control room, a branch of the one tree rooted in :mod:`spectra_io.errors`."""

from __future__ import annotations

from spectra_io.errors import SpectraEdgeError


class ControlRoomError(SpectraEdgeError):
    """Something went wrong in the control room: database, broker, configuration."""


class DatabaseError(ControlRoomError):
    """The console database cannot be opened, migrated or written."""


class AuditChainError(ControlRoomError):
    """The audit log's hash chain does not verify: a row was edited, removed or inserted."""


class AuthError(ControlRoomError):
    """A log-in, session or user-management request is refused."""


class KeyPinError(ControlRoomError):
    """The monitor's key-pin file cannot be read or written."""
