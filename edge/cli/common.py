"""Helpers shared by the CLI modules."""

from __future__ import annotations

import argparse

from edge.config import Config, load_config


def config_from_args(args: argparse.Namespace) -> Config:
    """Load the configuration named by ``--config`` (or the default chain)."""
    return load_config(getattr(args, "config", None))
