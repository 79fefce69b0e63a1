"""Host names and host patterns as a URL spells them.

Two layers read hosts: the config, which validates `[servers.NAME.urls]` `allow_hosts` and
`deny_hosts` when `bastion.toml` loads, and the URL constraint (`policy/urls.py`), which
compares each call's URL host with those patterns. Both must read a spelling the same way, so
the parsing lives here, in the lower of the two; policy imports it, config never imports policy.

Host spellings follow the WHATWG URL standard (what browsers do; a superset of what
`inet_aton` accepts): UTS 46 mapping, so fullwidth letters, circled digits and ideographic
full stops become ASCII; lower case; one trailing dot dropped; IDNA to A-labels; no `%`.
A host whose last label is numeric is an IPv4 address: one to four parts, each decimal,
`0x` hex or leading-zero octal, the last filling the remaining bytes (`2130706433`,
`0x7f.1`, `0177.0.0.1`, `127.1`), or else it is malformed. IPv6 goes in brackets, with an
optional zone (`[fe80::1%25eth0]`).

A pattern is a host (`example.com`), `*.example.com` for subdomains at any depth, or an IP
address in any spelling (a bare IPv6 address needs no brackets). The module is pure.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address
from types import ModuleType
from typing import TypeAlias

__all__ = ["Address", "host_pattern", "parse_host"]

Address: TypeAlias = IPv4Address | IPv6Address

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_PLAIN_HOST = re.compile(r"[A-Za-z0-9._-]+")
"""ASCII that UTS 46 maps to itself in lower case: such a host needs no IDNA mapping."""
_ZONE = re.compile(r"[A-Za-z0-9._~-]+")
_DIGITS = {10: frozenset("0123456789"), 16: frozenset("0123456789abcdef"), 8: frozenset("01234567")}


def host_pattern(pattern: str) -> str:
    """A configured host pattern in normal form; raises `ValueError` naming it when it is not one."""
    wildcard = pattern.startswith("*.")
    host = parse_host(pattern[2:] if wildcard else pattern)
    if host is None and not wildcard and ":" in pattern:
        host = parse_host(f"[{pattern}]")
    if host is None or (wildcard and not isinstance(host, str)):
        raise ValueError(f"not a host pattern (name, *.name or IP address): {pattern!r}")
    return ("*." if wildcard else "") + str(host)


def parse_host(text: str) -> str | Address | None:
    """A host as written -> its normalised name or its address; None when it is neither."""
    if text.startswith("[") and text.endswith("]"):
        return _ipv6(text[1:-1])
    try:
        if _PLAIN_HOST.fullmatch(text):
            mapped = text.lower()  # what uts46_remap returns for it, without the walk over code points
        else:
            mapped = _idna().uts46_remap(text, std3_rules=False, transitional=False)
        mapped = mapped.removesuffix(".")
        if len(mapped) > 253:  # more than DNS can carry
            return None
        labels = mapped.split(".")
        if _ends_in_number(labels[-1]):
            return _ipv4(labels)
        labels = [label if label.isascii() else _idna().alabel(label).decode("ascii") for label in labels]
    except UnicodeError:  # idna.IDNAError is one
        return None
    return ".".join(labels) if all(_LABEL.fullmatch(label) for label in labels) else None


def _idna() -> ModuleType:
    """`idna` and its tables, imported for the first host outside plain ASCII: most gateways never
    see one, and would hold over 0.1 MB for it (issue 13 §5)."""
    import idna

    return idna


def _ipv6(text: str) -> IPv6Address | None:
    address, percent, zone = text.partition("%")
    zone = zone.removeprefix("25")
    if percent and not _ZONE.fullmatch(zone):
        return None
    try:
        return IPv6Address(address)
    except ValueError:
        return None


def _ends_in_number(label: str) -> bool:
    return (bool(label) and set(label) <= _DIGITS[10]) or _ipv4_part(label) is not None


def _ipv4_part(part: str) -> int | None:
    radix = 16 if part.startswith("0x") else 8 if len(part) > 1 and part.startswith("0") else 10
    digits = part[2:] if radix == 16 else part[1:] if radix == 8 else part
    if not part or not set(digits) <= _DIGITS[radix]:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits, radix) if len(digits) <= 16 else 1 << 64


def _ipv4(labels: list[str]) -> IPv4Address | None:
    parts = [_ipv4_part(label) for label in labels]
    if len(parts) > 4 or None in parts:
        return None
    numbers = [part for part in parts if part is not None]
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        return None
    return IPv4Address(sum(number << (24 - 8 * i) for i, number in enumerate(head)) + last)
