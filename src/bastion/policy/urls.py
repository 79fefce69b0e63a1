"""URL arguments: refuse server-side request forgery before a call reaches the server.

A fetch-style tool gets its URL from the model, and the model may have got it from a web page.
`check_url` decides on the text alone; `check_url_resolved` also looks the host name up and
checks every address it resolves to. Both return a `Refusal` or `None`. Checks, in order:

1. `urls.malformed`: not a string; control characters, whitespace or backslashes anywhere
   (`http://evil.com\\@good.com` means different hosts to different parsers); not
   `scheme://authority`; a bad port; a host that is neither a valid name (at most 253
   characters) nor an address.
2. `urls.scheme`: the scheme, case-insensitively, is not in `UrlRules.schemes`.
3. `urls.userinfo`: any `@` in the authority (`http://good.com@evil.com`).
4. `urls.metadata`: a cloud metadata name or address, even with `allow_private`.
5. `urls.host_denied` / `urls.host_not_allowed`: the host lists. A pattern is a host
   (`example.com`), `*.example.com` for subdomains at any depth, which does NOT match the
   bare `example.com` (list both for both), or an IP address in any spelling. Lists apply
   to literal addresses too; being allowed never lifts rule 6.
6. `urls.private_address`: unless `allow_private`, a literal address that is not public
   (RFC 1918, loopback, link-local, CGNAT, benchmarking, documentation, multicast, reserved,
   unique- and site-local, and whatever `ipaddress` calls non-global), or `localhost` /
   `*.localhost`, which are refused without DNS.
7. `urls.unresolvable` (`check_url_resolved` only): the name does not resolve or resolves
   to nothing; then EVERY resolved address goes through rules 4 and 6, so one internal
   record among public ones refuses.

Host spellings follow the WHATWG URL standard, as `bastion.config.hosts` parses them (the
config validates the host patterns with the same parser when it loads). IPv6 forms that embed
IPv4 are judged by it too: IPv4-mapped and NAT64 `64:ff9b::/96` by the IPv4 address alone
(that is where the packets go), 6to4 by both. Teredo, IPv4-compatible, SIIT and local-use NAT64 `64:ff9b:1::/48` are
never public, so they are refused outright, and checked for metadata addresses even when
private ones are allowed.

The honest limits: the server resolves the name again when it fetches, and a DNS server the
attacker controls can answer differently the second time (DNS rebinding); and the server may
follow an HTTP redirect that Bastion never sees. The sandbox's network grant is the backstop;
this check stops the easy and the well-known tricks early, with a reason a person can read.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

from bastion.config.hosts import Address, host_pattern, parse_host
from bastion.policy.refusal import Refusal, quote

__all__ = ["Resolver", "UrlRules", "address_refusal", "check_url", "check_url_resolved", "system_resolver"]

Resolver: TypeAlias = Callable[[str], Sequence[str]]
"""Host name -> IP address strings; raises `OSError` when the name does not resolve."""

_METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean …
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public-looking address)
        "192.0.0.192",  # Oracle Cloud Classic
    )
)
# Named here so that the answer does not depend on the Python version's `ipaddress` tables.
_INTERNAL_NETWORKS: tuple[IPv4Network | IPv6Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        *("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"),
        *("192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24"),
        *("203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"),
        *("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32"),
        *("3fff::/20", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_AUTHORITY = re.compile(r"[^/?#]*")
_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f-\x9f]")
"""A backslash, whitespace (what `str.isspace` calls one) or a control character (category Cc)."""
_DECIMAL = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class UrlRules:
    """What URLs a tool argument may name. Schemes and host patterns are normalised on creation;
    a pattern that is not a host, `*.`name or address raises `ValueError`."""

    schemes: tuple[str, ...] = ("https", "http")
    allow_hosts: tuple[str, ...] = ()
    deny_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    section: str = ""
    """Where these rules are configured (`servers.web.urls`), so that a refusal names the setting to change."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "schemes", tuple(scheme.lower() for scheme in self.schemes))
        object.__setattr__(self, "allow_hosts", tuple(host_pattern(p) for p in self.allow_hosts))
        object.__setattr__(self, "deny_hosts", tuple(host_pattern(p) for p in self.deny_hosts))


def check_url(raw: object, rules: UrlRules) -> Refusal | None:
    """Pure: the URL's shape, scheme, host lists and any literal IP address in every spelling."""
    parsed = _parse(raw, rules)
    return parsed if isinstance(parsed, Refusal) else None


def check_url_resolved(raw: object, rules: UrlRules, resolve: Resolver) -> Refusal | None:
    """`check_url`, then resolve the host name and check every returned address (for names, not literals)."""
    parsed = _parse(raw, rules)
    if isinstance(parsed, Refusal):
        return parsed
    if not isinstance(parsed, str):
        return None  # a literal address: check_url has judged it
    try:
        answers = list(resolve(parsed))
    except OSError as error:
        return Refusal("urls.unresolvable", f"host {quote(parsed)} does not resolve: {quote(str(error))}")
    if not answers:
        return Refusal("urls.unresolvable", f"host {quote(parsed)} resolves to no address")
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer)
        except ValueError:
            return Refusal("urls.unresolvable", f"host {quote(parsed)} resolves to {quote(answer)}, not an address")
        problem = _address_problem(address, rules)
        if problem is not None:
            rule, what = problem
            return Refusal(rule, f"host {quote(parsed)} resolves to {quote(str(address))}, {what}{_fix(rule, rules)}")
    return None


def system_resolver(host: str) -> list[str]:
    """`socket.getaddrinfo` over both families, addresses only (the I/O edge); raises `OSError`."""
    addresses: list[str] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
        text = sockaddr[0]
        if family in (socket.AF_INET, socket.AF_INET6) and isinstance(text, str) and text not in addresses:
            addresses.append(text)
    return addresses


def address_refusal(address: IPv4Address | IPv6Address, rules: UrlRules) -> Refusal | None:
    """Refuse a cloud metadata address always, and a non-public one unless `rules.allow_private`."""
    problem = _address_problem(address, rules)
    return None if problem is None else Refusal(problem[0], f"{quote(str(address))} is {problem[1]}")


def _parse(raw: object, rules: UrlRules) -> Refusal | str | Address:
    """The URL's host (a normalised name or an address) once every text-only rule passes."""
    if not isinstance(raw, str):
        return Refusal("urls.malformed", f"a URL must be a string, not {type(raw).__name__}")
    if _UNSAFE.search(raw):
        return Refusal("urls.malformed", f"URL {quote(raw)} contains whitespace, a control character or a backslash")
    scheme = _SCHEME.match(raw)
    if scheme is None:
        return Refusal("urls.malformed", f"{quote(raw)} is not an absolute URL")
    if scheme[1].lower() not in rules.schemes:
        return Refusal("urls.scheme", f"scheme {quote(scheme[1].lower())} is not one of {', '.join(rules.schemes)}")
    rest = raw[scheme.end() :]
    authority = _AUTHORITY.match(rest, 2)
    if not rest.startswith("//") or authority is None or not authority[0]:
        return Refusal("urls.malformed", f"URL {quote(raw)} names no host")
    if "@" in authority[0]:
        return Refusal("urls.userinfo", f"URL {quote(raw)} carries userinfo before '@'; the host is what follows it")
    text, port = _split_port(authority[0])
    host = parse_host(text) if port is not None else None
    if host is None:
        return Refusal("urls.malformed", f"URL {quote(raw)} has no valid host and port: {quote(authority[0])}")
    return _host_refusal(text, host, rules) or host


def _host_refusal(text: str, host: str | Address, rules: UrlRules) -> Refusal | None:
    key = host if isinstance(host, str) else str(host)
    shown = quote(key) if key == text.lower() else f"{quote(text)} ({quote(key)})"
    problem = _address_problem(host, rules) if not isinstance(host, str) else None
    if isinstance(host, str) and host in _METADATA_NAMES:
        return Refusal("urls.metadata", f"host {shown} is a cloud metadata service")
    if problem is not None and problem[0] == "urls.metadata":
        return Refusal(problem[0], f"host {shown} is {problem[1]}")
    if any(_matches(key, host, pattern) for pattern in rules.deny_hosts):
        return Refusal("urls.host_denied", f"host {shown} is in {_setting(rules, 'deny_hosts')}")
    if rules.allow_hosts and not any(_matches(key, host, pattern) for pattern in rules.allow_hosts):
        reason = f"host {shown} is not in {_setting(rules, 'allow_hosts')}; add it there if the server should reach it"
        return Refusal("urls.host_not_allowed", reason)
    if problem is not None:
        return Refusal(problem[0], f"host {shown} is {problem[1]}{_fix(problem[0], rules)}")
    if isinstance(host, str) and not rules.allow_private and (host == "localhost" or host.endswith(".localhost")):
        reason = f"host {shown} is this machine's loopback interface{_fix('urls.private_address', rules)}"
        return Refusal("urls.private_address", reason)
    return None


def _setting(rules: UrlRules, name: str) -> str:
    return f"{rules.section}.{name}" if rules.section else name


def _fix(rule: str, rules: UrlRules) -> str:
    """How an operator lets a server reach what this rule refuses, when that is theirs to decide."""
    if rule != "urls.private_address":
        return ""  # cloud metadata stays refused whatever the configuration says
    return (
        f"; if the server must reach private and loopback addresses, set {_setting(rules, 'allow_private')} = true"
        " (with allow_hosts to keep it to the hosts it needs)"
    )


def _matches(key: str, host: str | Address, pattern: str) -> bool:
    if pattern.startswith("*."):
        return isinstance(host, str) and key.endswith(pattern[1:])
    return key == pattern


def _split_port(authority: str) -> tuple[str, str | None]:
    """(host, port) with port None when it is not a port; an empty port is allowed (`host:`)."""
    if authority.startswith("["):
        end = authority.find("]") + 1
        host, rest = authority[:end], authority[end:]
        if end == 0 or (rest and not rest.startswith(":")):
            return authority, None
        port = rest[1:]
    else:
        host, _, port = authority.partition(":")
    digits = port.lstrip("0") or "0"
    valid = not port or (set(port) <= _DECIMAL and len(digits) <= 5 and int(digits) <= 65535)
    return host, port if valid else None


def _address_problem(address: Address, rules: UrlRules) -> tuple[str, str] | None:
    """(rule, what the address is) when it must be refused."""
    if isinstance(address, IPv6Address):
        address = IPv6Address(int(address))  # drop any zone: it changes nothing here
    embedded = _embedded_ipv4(address)
    for candidate in (address, *embedded):
        if candidate in _METADATA_ADDRESSES:
            return "urls.metadata", "a cloud metadata address" + _embedding(address, candidate)
    if rules.allow_private:
        return None
    direct = isinstance(address, IPv6Address) and (address.ipv4_mapped is not None or address in _NAT64)
    for candidate in embedded if direct else (address, *embedded):
        if _internal(candidate):
            what = "a private, loopback, link-local or reserved address"
            return "urls.private_address", what + _embedding(address, candidate)
    return None


def _embedding(address: Address, candidate: Address) -> str:
    return "" if candidate == address else f" (it embeds {quote(str(candidate))})"


def _embedded_ipv4(address: Address) -> list[IPv4Address]:
    """Every IPv4 address an IPv6 address can stand for: mapped, compatible, SIIT, NAT64, 6to4, Teredo."""
    if isinstance(address, IPv4Address):
        return []
    value = int(address)
    low = IPv4Address(value & 0xFFFFFFFF)
    found: list[IPv4Address] = []
    if (value >> 32 in (0, 0xFFFF, 0xFFFF0000) and value > 1) or address in _NAT64:
        found.append(low)
    if address in _NAT64_LOCAL:  # RFC 6052 layouts for a /48, /56, /64 and /96 prefix (bits 64-71 skipped)
        found += [low, IPv4Address((value >> 24) & 0xFFFFFFFF)]
        found.append(IPv4Address((((value >> 64) & 0xFF) << 24) | ((value >> 32) & 0xFFFFFF)))
        found.append(IPv4Address((((value >> 64) & 0xFFFF) << 16) | ((value >> 40) & 0xFFFF)))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found += address.teredo
    return found


def _internal(address: Address) -> bool:
    return (
        not address.is_global
        or address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or any(address in network for network in _INTERNAL_NETWORKS)
    )
