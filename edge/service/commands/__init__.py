"""Remote commands: the contract (:mod:`.contract`: the registry of commands and their
request models), the dispatcher (:mod:`.dispatcher`: topic, rate, size and body checks, a
bounded queue and one worker thread) and the service's handlers (:mod:`.handlers`)."""

from __future__ import annotations

from edge.service.commands.contract import (
    COMMANDS,
    MAX_CORRELATION_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_RESPONSE_TOPIC,
    AckArgs,
    BackgroundArgs,
    CommandArgs,
    CommandRejected,
    ErrorCode,
    GetSpectrumArgs,
    PingArgs,
    ReplayArgs,
    ScanArgs,
    parse_request,
    request_schema,
)
from edge.service.commands.dispatcher import Dispatcher, Request, TokenBucket

__all__ = [
    "COMMANDS",
    "MAX_CORRELATION_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_RESPONSE_TOPIC",
    "AckArgs",
    "BackgroundArgs",
    "CommandArgs",
    "CommandRejected",
    "Dispatcher",
    "ErrorCode",
    "GetSpectrumArgs",
    "PingArgs",
    "ReplayArgs",
    "Request",
    "ScanArgs",
    "TokenBucket",
    "parse_request",
    "request_schema",
]
