"""Who a server is and what it may know: per-server identities and per-server secrets.

`SecretStore` keeps each server's secrets encrypted at rest and gives a server only its own;
`ServerIdentities` keeps an Ed25519 key pair per server whose id records can name.
"""

from bastion.identity.secrets import SecretInfo, SecretStore
from bastion.identity.servers import ServerIdentities, ServerIdentity
from bastion.types import Secret

__all__ = ["Secret", "SecretInfo", "SecretStore", "ServerIdentities", "ServerIdentity"]
