"""Where a message comes from: the device prefix and the message kind of an MQTT topic.

Devices publish under ``<prefix>/...`` (docs/mqtt.md). The control room watches every device
under a filter such as ``customs/+/+``: a topic's first levels (as many as the filter has) are
the device's prefix, the rest its kind (``status``, ``info``, ``health``, ``alarm``,
``scan/result``, ``cmd/<name>/response``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Default filter: every device of every post under ``customs/``.
DEFAULT_FILTER: Final = "customs/+/+"
#: Retained state kinds, taken through an ordinary subscription (shared ones get no retained).
STATE_KINDS: Final = ("status", "info", "health", "alarm")
RESULT_KIND: Final = "scan/result"


@dataclass(frozen=True)
class DeviceTopic:
    """A topic split into the device prefix and the kind of message."""

    prefix: str
    kind: str

    @property
    def command_response(self) -> str | None:
        """The command name when this is ``cmd/<name>/response``, else None."""
        parts = self.kind.split("/")
        if len(parts) == 3 and parts[0] == "cmd" and parts[2] == "response":
            return parts[1]
        return None


@dataclass(frozen=True)
class TopicFilter:
    """A device prefix filter (``customs/+/+``) and the subscriptions derived from it."""

    filter: str = DEFAULT_FILTER

    def __post_init__(self) -> None:
        levels = self.filter.strip("/").split("/")
        if not levels or any(not lv or "#" in lv for lv in levels):
            raise ValueError(f"bad device filter {self.filter!r}: empty level or '#'")
        object.__setattr__(self, "filter", "/".join(levels))

    @property
    def levels(self) -> int:
        """How many topic levels make a device prefix."""
        return len(self.filter.split("/"))

    def parse(self, topic: str) -> DeviceTopic | None:
        """The prefix and kind of *topic*, or None when it is not under the filter."""
        parts = topic.split("/")
        if len(parts) <= self.levels:
            return None
        for want, got in zip(self.filter.split("/"), parts, strict=False):
            if want != "+" and want != got:
                return None
        return DeviceTopic("/".join(parts[: self.levels]), "/".join(parts[self.levels :]))

    @property
    def results(self) -> str:
        """Filter of every device's results."""
        return f"{self.filter}/{RESULT_KIND}"

    def shared_results(self, group: str) -> str:
        """The results filter as an MQTT 5 shared subscription of *group*."""
        if not group or any(c in group for c in "/+#"):
            raise ValueError(f"bad share group name {group!r}")
        return f"$share/{group}/{self.results}"

    @property
    def state(self) -> list[str]:
        """Ordinary subscriptions for the retained state and the command responses."""
        return [f"{self.filter}/{k}" for k in STATE_KINDS] + [f"{self.filter}/cmd/+/response"]
