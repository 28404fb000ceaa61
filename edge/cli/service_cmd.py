"""Subcommands of the service group (being built; see COMMAND_MODULES in edge.cli)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this group's subcommands (none yet)."""
