"""Name resolution for the SSRF check: the system's resolver, or the DNS servers `[dns]` names.

This is policy's one I/O edge. A `Resolver` takes a host name and returns its addresses, or
raises `OSError`, which the URL check turns into `urls.unresolvable` (fail closed). With
`[dns] nameservers` set, A and AAAA records are asked of those servers directly (dnspython),
so a gateway can use the resolver its servers use, whatever the host's own configuration;
without, `getaddrinfo` answers as for any program on the host. dnspython is imported only
then: it is several megabytes of a gateway's memory that most configurations never use.
"""

from __future__ import annotations

from bastion.config.model import DnsConfig, split_nameserver
from bastion.policy.urls import Resolver, system_resolver

__all__ = ["make_resolver"]


def make_resolver(config: DnsConfig) -> Resolver:
    if not config.nameservers:
        return system_resolver
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    pairs = [split_nameserver(server) for server in config.nameservers]
    resolver.nameservers = [address for address, _port in pairs]
    resolver.nameserver_ports = dict(pairs)
    resolver.timeout = config.timeout
    resolver.lifetime = config.timeout

    def resolve(host: str) -> list[str]:
        addresses: list[str] = []
        failures: list[str] = []
        for record in ("A", "AAAA"):
            try:
                answer = resolver.resolve(host, record, search=False, raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN as exc:
                raise OSError(f"{host} does not exist (NXDOMAIN)") from exc
            except dns.exception.DNSException as exc:
                failures.append(f"{record}: {exc}")
                continue
            addresses += [item.to_text() for item in answer]
        if not addresses and failures:
            raise OSError("; ".join(failures))
        return addresses

    return resolve
