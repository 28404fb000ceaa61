"""Helpers shared by the CLI modules."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.config import Config


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the configuration named by ``--config`` (or the default chain)."""
    from edge.config import load_config  # pydantic: only for commands that read the config

    return load_config(getattr(args, "config", None))
