"""Bastion: a security gateway for the Model Context Protocol."""

__version__ = "0.1.0"
DISTRIBUTION = "bastion-mcp-gateway"
"""The name `pip install` takes; the command it installs is `bastion`."""

__all__ = ["DISTRIBUTION", "__version__"]
