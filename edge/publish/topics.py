"""The MQTT topic tree of one device (see docs/mqtt.md).

Every topic lives under the configured prefix (default ``customs/{post}/{device}``)::

    <prefix>/status                 retained  online | offline (last will) | stopped | maintenance
    <prefix>/info                   retained  identity, versions, public key
    <prefix>/health                 retained  periodic health
    <prefix>/alarm                  retained  active alarm or cleared
    <prefix>/scan/result            QoS 1     one message per scan, signed
    <prefix>/cmd/<name>             in        remote command requests
    <prefix>/cmd/<name>/response    out       responses (MQTT 5 response topic + correlation data)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from edge.config.schema import Config
from edge.errors import ConfigError

#: Retained state topics, republished on every reconnect.
RETAINED_KINDS: Final = ("status", "info", "health", "alarm", "ota/state")
#: Allowed status values.
STATUS_VALUES: Final = ("online", "offline", "stopped", "maintenance")

_SEGMENT = re.compile(r"^[^#+/\x00]+$")


def format_prefix(template: str, post: str, device: str) -> str:
    """Expand ``{post}`` and ``{device}`` in a prefix template and check the result.

    Raises :class:`ConfigError` for an empty level, a wildcard or an unknown placeholder.
    """
    try:
        prefix = template.format(post=post, device=device).strip("/")
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(f"mqtt.prefix {template!r}: bad placeholder ({err})") from err
    if not prefix or not all(_SEGMENT.match(level) for level in prefix.split("/")):
        raise ConfigError(f"mqtt.prefix {template!r}: empty level or wildcard in {prefix!r}")
    return prefix


@dataclass(frozen=True)
class Topics:
    """Concrete topic names under one prefix."""

    prefix: str

    @classmethod
    def from_config(cls, cfg: Config) -> Topics:
        """The topics of the device described by *cfg*."""
        return cls(format_prefix(cfg.mqtt.prefix, cfg.device.post, cfg.device.id))

    def state(self, kind: str) -> str:
        """Topic of a retained state message (one of :data:`RETAINED_KINDS`)."""
        if kind not in RETAINED_KINDS:
            raise ValueError(f"unknown retained kind {kind!r}; expected one of {RETAINED_KINDS}")
        return f"{self.prefix}/{kind}"

    @property
    def status(self) -> str:
        """Availability topic (retained; also the last will)."""
        return f"{self.prefix}/status"

    @property
    def result(self) -> str:
        """Scan results (QoS 1, not retained)."""
        return f"{self.prefix}/scan/result"

    def cmd(self, name: str) -> str:
        """Request topic of command *name*."""
        return f"{self.prefix}/cmd/{name}"

    def cmd_response(self, name: str) -> str:
        """Default response topic of command *name* (when the request names none)."""
        return f"{self.prefix}/cmd/{name}/response"

    @property
    def cmd_filter(self) -> str:
        """Subscription filter matching every command request of this device."""
        return f"{self.prefix}/cmd/+"

    def command_name(self, topic: str) -> str | None:
        """The command name if *topic* is exactly ``<prefix>/cmd/<name>``, else None.

        The one parser of command topics: a name is one non-empty topic level without
        wildcards or NUL. (The commands themselves are listed in
        :data:`edge.service.commands.contract.COMMANDS`.)
        """
        head = f"{self.prefix}/cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        if not name or any(c in name for c in "/+#\x00"):
            return None
        return name
