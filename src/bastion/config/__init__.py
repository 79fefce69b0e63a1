"""Configuration: the `bastion.toml` model, loading with precise errors, client-config import."""

from bastion.config.load import load_config, parse_config
from bastion.config.model import BastionConfig, GatewayConfig, HttpConfig, ServerConfig, ToolRules

__all__ = ["BastionConfig", "GatewayConfig", "HttpConfig", "ServerConfig", "ToolRules", "load_config", "parse_config"]
