"""Configuration: one strict schema (:mod:`edge.config.schema`) and its loader."""

from edge.config.loader import ENV_VAR, default_config_text, load_config, parse_config
from edge.config.schema import Config

__all__ = ["ENV_VAR", "Config", "default_config_text", "load_config", "parse_config"]
