"""Errors of the ``edge`` layer, a branch of the one tree rooted in :mod:`spectra_io.errors`."""

from __future__ import annotations

from hal.errors import HalError
from spectra_io.errors import SpectraEdgeError


class EdgeError(SpectraEdgeError):
    """Something went wrong above the hardware: config, library, model, publishing."""


class ConfigError(EdgeError, ValueError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` lists ``(key path, message)`` pairs, one per error found.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class LibraryError(EdgeError, ValueError):
    """A reference library cannot be built, loaded or changed."""


class ModelError(EdgeError, ValueError):
    """A classifier model is missing, corrupt, or does not match its manifest or library."""


class PublishError(EdgeError, ConnectionError):
    """A message could not be handed to the broker."""


class OutboxError(EdgeError, OSError):
    """The durable outbox (SQLite) cannot be opened or written."""


class CommandError(EdgeError, ValueError):
    """A remote command is malformed, unknown or not allowed."""


class UpdateError(EdgeError, RuntimeError):
    """An over-the-air update is refused or failed; ``reason`` is a stable reason code.

    Codes: ``no_space``, ``too_large``, ``download_failed``, ``truncated``, ``hash_mismatch``,
    ``bad_signature``, ``expired``, ``metadata_rollback``, ``unknown_target``,
    ``bad_target``, ``downgrade``, ``incompatible``, ``unsafe_archive``, ``selftest_failed``,
    ``unhealthy``, ``busy``, ``no_release``, ``bad_request`` (a remote request the updater
    refuses).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


__all__ = [
    "CommandError",
    "ConfigError",
    "EdgeError",
    "HalError",
    "LibraryError",
    "ModelError",
    "OutboxError",
    "PublishError",
    "SpectraEdgeError",
]
