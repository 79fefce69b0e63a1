"""Storage: Bastion's state under BASTION_HOME (the embedded SQLite default)."""

from bastion.store.home import bastion_home, ensure_home
from bastion.store.sqlite import GatewayRow, ServerRow, StateStore, TokenRow

__all__ = ["GatewayRow", "ServerRow", "StateStore", "TokenRow", "bastion_home", "ensure_home"]
