"""URL arguments are refused when they could reach an internal service, in any spelling."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.policy.urls import (
    Resolver,
    UrlRules,
    address_refusal,
    check_url,
    check_url_resolved,
    system_resolver,
)

DEFAULT = UrlRules()
INTERNAL = UrlRules(allow_private=True)

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "HTTP://127.0.0.1:8080/admin",
    "http://127.0.0.1./",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0X7F000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f.1/",
    "http://0177.0x0.00.1/",
    "http://127.000.000.001/",
    "http://00000000000000000000177.1/",
    "http://127.0.0.0x1/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]:80/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::FFFF:7F00:1]/",
    "http://[::127.0.0.1]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b:1::7f00:1]/",
    "http://[2002:7f00:1::1]/",
    "http://localhost/",
    "http://LocalHost.:3000/",
    "http://api.localhost/",
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # fullwidth
    "http://local\u00adhost/",  # soft hyphen, which IDNA drops
    "http://\u2460\u2461\u2466.0.0.1/",  # circled digits
    "http://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://1\u200b27.0.0.1/",  # zero width space, which IDNA drops
]
PRIVATE_SPELLINGS = [
    "http://10.0.0.1/",
    "http://10.1/",
    "http://10.0.1/",
    "http://167772161/",
    "http://0xa000001/",
    "http://012.0.0.1/",
    "http://0xa.0.0.1/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:a00:1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:a00:1::]/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://203.0.113.9/",
    "http://224.0.0.1/",
    "http://239.1.2.3/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fe80::1%eth0]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",
    "http://[3fff::1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
]
UNSPECIFIED_SPELLINGS = [
    "http://0.0.0.0/",
    "http://0/",
    "http://00/",
    "http://0x0/",
    "http://0x/",
    "http://0.0/",
    "http://000.000.000.000/",
    "http://[::]/",
    "http://[::ffff:0.0.0.0]/",
]
METADATA_SPELLINGS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://169.254.43518/",
    "http://169.16689662/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b:1:a9fe:aa:200::]/",  # local-use NAT64 (RFC 8215), 169.254.170.2 in the RFC 6052 layout for a /48 prefix
    "http://[64:ff9b:1:a9:fe:aa02::]/",  # … for a /56 prefix
    "http://[64:ff9b:1:0:a9:feaa:200:0]/",  # … for a /64 prefix
    "http://[64:ff9b:1::a9fe:aa02]/",  # … for a /96 prefix
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2001:0:a9fe:a9fe::1]/",  # Teredo server field
    "http://[fd00:ec2::254]/",
    "http://[fd00:ec2::254%25eth0]/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://168.63.129.16/machine",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.Google.Internal./",
    "http://metadata/",
    "http://metadata.goog/",
    "http://instance-data/latest/",
]
BENIGN_LOOK_ALIKES = [
    "https://example.com/1.2.3.4",
    "https://example.com/?next=http://127.0.0.1",
    "https://example.com/@127.0.0.1",
    "https://example.com#@127.0.0.1",
    "https://127.0.0.1.nip.io.example.com/",
    "https://10.0.0.1.example.com/",
    "https://0x7f.example.com/",
    "https://1.example.com/",
    "https://localhost.example.com/",
    "https://mylocalhost/",
    "https://metadata.example.com/",
    "https://a_b.example.com/",
    "https://[2606:4700::1111]/",
    "https://[::ffff:8.8.8.8]/",
    "https://[64:ff9b::8.8.8.8]/",
    "https://[2002:808:808::1]/",
    "https://8.8.8.8/",
    "https://134744072/",
    "https://EXAMPLE.com.:443/path?q=1",
    "https://example.com:/",
    "https://example.com:" + "0" * 5000 + "443/",
    "https://1.2.3.-4/",  # a name: '-4' is not a number
    "https://" + "a." * 125 + "com./",
    "https://b\u00fccher.example/",
    "https://example.com/caf\u00e9?q=%20",
]
MALFORMED = [
    42,
    None,
    b"http://example.com/",
    "",
    "example.com",
    "//example.com/",
    "http:example.com",
    "http:/example.com",
    "http:///example.com",
    "http://",
    "http://:80/",
    "http://evil.com\\@good.com/",
    "http://evil.com\\.good.com/",
    "http://exa mple.com/",
    " http://example.com/",
    "http://example.com/\t",
    "http://example.com/\n",
    "http://example.com/\x00",
    "http://example.com/\x85",
    "http://\u00a0example.com/",
    "http://256.0.0.1/",
    "http://127.0.0.256/",
    "http://4294967296/",
    "http://1.2.3.4.5/",
    "http://example.123/",
    "http://example.0x1/",
    "http://0x7g.0.0.1/",
    "http://09.0.0.1/",
    "http://::1/",
    "http://[::1/",
    "http://[::1]x/",
    "http://[127.0.0.1]/",
    "http://[v1.fe]/",
    "http://[fe80::1%]/",
    "http://[::ffff:0177.0.0.1]/",
    "http://example.com:99999/",
    "http://example.com:8o/",
    "http://example.com:80:90/",
    "http://example.com:" + "9" * 5000 + "/",
    "http://" + "0" * 5000 + "1/",
    "http://" + "a." * 127 + "com/",
    "http://exa%6dple.com/",
    "http://%31%32%37.0.0.1/",
    "http://a..b/",
    "http://example.com../",
    "http://exa[mple.com/",
    "http://x\u202e.com/",
    "http://" + "a" * 64 + ".com/",
]


def fake_resolver(records: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    def resolve(host: str) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return records[host]

    return resolve


def rule(raw: object, rules: UrlRules = DEFAULT) -> str | None:
    refusal = check_url(raw, rules)
    return None if refusal is None else refusal.rule


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + PRIVATE_SPELLINGS + UNSPECIFIED_SPELLINGS)
def test_internal_addresses_are_refused_in_every_spelling(url: str) -> None:
    assert rule(url) == "urls.private_address"


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + PRIVATE_SPELLINGS + UNSPECIFIED_SPELLINGS)
def test_allow_private_permits_internal_addresses(url: str) -> None:
    assert rule(url, INTERNAL) is None


@pytest.mark.parametrize("url", METADATA_SPELLINGS)
@pytest.mark.parametrize("rules", [DEFAULT, INTERNAL], ids=["default", "allow_private"])
def test_cloud_metadata_is_refused_even_when_private_addresses_are_allowed(url: str, rules: UrlRules) -> None:
    assert rule(url, rules) == "urls.metadata"


@pytest.mark.parametrize("url", BENIGN_LOOK_ALIKES)
def test_benign_look_alikes_pass(url: str) -> None:
    assert check_url(url, DEFAULT) is None


@pytest.mark.parametrize("raw", MALFORMED)
def test_values_that_are_not_one_unambiguous_url_are_malformed(raw: object) -> None:
    assert rule(raw) == "urls.malformed"


@pytest.mark.parametrize(
    "url",
    [
        "http://good.com@evil.com/",
        "http://user:pass@example.com/",
        "http://@example.com/",
        "https://user@127.0.0.1/",
        "http://example.com;@127.0.0.1/",
    ],
)
def test_userinfo_is_refused(url: str) -> None:
    assert rule(url) == "urls.userinfo"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "dict://127.0.0.1:11211/stat",
        "ftp://example.com/",
        "javascript:alert(1)",
        "localhost:8080",
        "ws://example.com/",
    ],
)
def test_schemes_outside_the_rules_are_refused(url: str) -> None:
    assert rule(url) == "urls.scheme"


def test_schemes_compare_case_insensitively() -> None:
    rules = UrlRules(schemes=("HTTPS",))
    assert rules.schemes == ("https",)
    assert rule("HtTpS://example.com/", rules) is None
    assert rule("http://example.com/", rules) == "urls.scheme"


def test_refusals_quote_the_url_safely() -> None:
    refusal = check_url("http://example.com/\x1b[31m", DEFAULT)
    assert refusal is not None
    assert "\x1b" not in refusal.reason


class TestHostLists:
    allow = UrlRules(allow_hosts=("Example.COM.", "*.api.example.com", "b\u00fccher.example"))

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com/",
            "https://EXAMPLE.com./x",
            "https://v1.api.example.com/",
            "https://a.b.api.example.com/",
            "https://xn--bcher-kva.example/",
            "https://B\u00dcCHER.example/",
        ],
    )
    def test_listed_hosts_and_subdomains_of_a_wildcard_are_allowed(self, url: str) -> None:
        assert rule(url, self.allow) is None

    @pytest.mark.parametrize(
        "url",
        [
            "https://api.example.com/",  # a wildcard does not match its bare domain
            "https://xapi.example.com/",
            "https://www.example.com/",
            "https://example.com.evil.com/",
            "https://evilexample.com/",
            "https://8.8.8.8/",
        ],
    )
    def test_other_hosts_are_not_allowed(self, url: str) -> None:
        assert rule(url, self.allow) == "urls.host_not_allowed"

    deny = UrlRules(deny_hosts=("*.corp.example", "evil.com", "8.8.8.8"))

    @pytest.mark.parametrize(
        "url",
        ["https://db.corp.example/", "https://evil.com/", "https://EVIL.com./", "https://0x8.8.2056/"],
    )
    def test_denied_hosts_are_refused_in_any_spelling(self, url: str) -> None:
        assert rule(url, self.deny) == "urls.host_denied"

    @pytest.mark.parametrize("url", ["https://corp.example/", "https://notevil.com/", "https://8.8.4.4/"])
    def test_hosts_not_denied_pass(self, url: str) -> None:
        assert rule(url, self.deny) is None

    def test_deny_wins_over_allow(self) -> None:
        rules = UrlRules(allow_hosts=("*.example.com",), deny_hosts=("admin.example.com",))
        assert rule("https://admin.example.com/", rules) == "urls.host_denied"
        assert rule("https://www.example.com/", rules) is None

    def test_allowing_a_private_address_needs_allow_private_too(self) -> None:
        assert rule("http://10.0.0.5/", UrlRules(allow_hosts=("10.0.0.5",))) == "urls.private_address"
        assert rule("http://0xa.0.0.5/", UrlRules(allow_hosts=("10.0.0.5",), allow_private=True)) is None

    def test_allowing_a_metadata_address_does_not_help(self) -> None:
        rules = UrlRules(allow_hosts=("169.254.169.254", "metadata.google.internal"), allow_private=True)
        assert rule("http://169.254.169.254/", rules) == "urls.metadata"
        assert rule("http://metadata.google.internal/", rules) == "urls.metadata"

    def test_patterns_are_normalised_like_hosts(self) -> None:
        rules = UrlRules(allow_hosts=("Example.COM.", "*.B\u00fccher.example", "0x7f.1", "[::1]", "::2"))
        assert rules.allow_hosts == ("example.com", "*.xn--bcher-kva.example", "127.0.0.1", "::1", "::2")

    @pytest.mark.parametrize("pattern", ["*", "", "exa mple.com", "*.1.2.3.4", "http://x.com", "1.2.3.4:80", "a..b"])
    def test_patterns_that_are_not_hosts_raise(self, pattern: str) -> None:
        with pytest.raises(ValueError, match="not a host pattern"):
            UrlRules(deny_hosts=(pattern,))


class TestResolved:
    records: ClassVar[dict[str, list[str]]] = {
        "example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
        "127.0.0.1.nip.io.example.com": ["127.0.0.1"],
        "rebind.example.com": ["93.184.216.34", "10.0.0.1"],
        "imds.example.com": ["169.254.169.254"],
        "mapped.example.com": ["::ffff:127.0.0.1"],
        "zoned.example.com": ["fe80::1%eth0"],
        "internal.example.com": ["10.0.0.7"],
        "empty.example.com": [],
        "junk.example.com": ["not-an-address"],
        "xn--bcher-kva.example": ["93.184.216.35"],
    }
    resolve = staticmethod(fake_resolver(records))

    def rule(self, url: str, rules: UrlRules = DEFAULT) -> str | None:
        refusal = check_url_resolved(url, rules, self.resolve)
        return None if refusal is None else refusal.rule

    def test_a_name_with_only_public_addresses_passes(self) -> None:
        assert self.rule("https://example.com/") is None

    def test_a_name_that_check_url_passes_is_refused_when_it_resolves_to_loopback(self) -> None:
        url = "https://127.0.0.1.nip.io.example.com/"
        assert check_url(url, DEFAULT) is None
        refusal = check_url_resolved(url, DEFAULT, self.resolve)
        assert refusal is not None
        assert refusal.rule == "urls.private_address"
        assert "127.0.0.1" in refusal.reason.removeprefix("host '127.0.0.1.nip.io.example.com'")

    def test_one_internal_address_among_public_ones_refuses(self) -> None:
        assert self.rule("https://rebind.example.com/") == "urls.private_address"

    @pytest.mark.parametrize("url", ["https://mapped.example.com/", "https://zoned.example.com/"])
    def test_resolved_ipv6_forms_are_checked_like_literals(self, url: str) -> None:
        assert self.rule(url) == "urls.private_address"

    def test_a_name_for_a_metadata_address_is_refused_even_with_allow_private(self) -> None:
        assert self.rule("https://imds.example.com/", INTERNAL) == "urls.metadata"
        assert self.rule("https://internal.example.com/", INTERNAL) is None

    @pytest.mark.parametrize(
        "url", ["https://nowhere.example.com/", "https://empty.example.com/", "https://junk.example.com/"]
    )
    def test_names_without_addresses_are_unresolvable(self, url: str) -> None:
        assert self.rule(url) == "urls.unresolvable"

    def test_the_resolver_gets_the_normalised_name(self) -> None:
        calls: list[str] = []
        resolve = fake_resolver(self.records, calls)
        assert check_url_resolved("https://B\u00dcCHER.example./", DEFAULT, resolve) is None
        assert calls == ["xn--bcher-kva.example"]

    @pytest.mark.parametrize("url", ["https://8.8.8.8/", "https://[2606:4700::1111]/", "file:///etc/passwd"])
    def test_literals_and_refused_urls_are_not_resolved(self, url: str) -> None:
        calls: list[str] = []
        check_url_resolved(url, DEFAULT, fake_resolver({}, calls))
        assert calls == []

    def test_check_url_refusals_come_first(self) -> None:
        assert self.rule("http://10.0.0.1/") == "urls.private_address"
        assert self.rule("http://good.com@example.com/") == "urls.userinfo"


def test_address_refusal_judges_addresses_directly() -> None:
    assert address_refusal(IPv4Address("8.8.8.8"), DEFAULT) is None
    assert address_refusal(IPv6Address("fe80::1%eth0"), INTERNAL) is None
    refused = address_refusal(IPv6Address("::ffff:10.0.0.1"), DEFAULT)
    assert refused is not None
    assert refused.rule == "urls.private_address"
    metadata = address_refusal(IPv6Address("fd00:ec2::254%eth0"), INTERNAL)
    assert metadata is not None
    assert metadata.rule == "urls.metadata"


def test_system_resolver_returns_each_address_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(host: str, port: object, **_: object) -> list[tuple[object, ...]]:
        assert host == "example.com"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800::1", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert system_resolver("example.com") == ["93.184.216.34", "2606:2800::1"]


def test_system_resolver_reads_numeric_hosts_without_dns() -> None:
    assert system_resolver("127.0.0.1") == ["127.0.0.1"]


# Hypothesis: every spelling of an IPv4 address gets the decision its canonical form gets.

PRIVATE_V4 = [(0x7F000000, 24), (0x0A000000, 24), (0xAC100000, 20), (0xC0A80000, 16), (0xA9FE0000, 16)]


@st.composite
def v4_part(draw: st.DrawFn, value: int) -> str:
    style = draw(st.sampled_from(["decimal", "octal", "hex", "HEX"]))
    zeros = "0" * draw(st.integers(0, 3))
    if style == "decimal":
        return str(value)  # a leading zero would make it octal
    if style == "octal":
        return f"0{zeros}{value:o}"
    return f"0x{zeros}{value:x}" if style == "hex" else f"0X{zeros}{value:X}"


@st.composite
def spellings(draw: st.DrawFn, n: int) -> list[str]:
    """Hosts that all name the IPv4 address n: whole numbers, short and dotted forms, IPv6 embeddings."""
    a, b, c, d = n.to_bytes(4, "big")
    dotted = f"{a}.{b}.{c}.{d}"
    hosts = [
        draw(v4_part(n)),
        f"{draw(v4_part(a))}.{draw(v4_part(n & 0xFFFFFF))}",
        f"{draw(v4_part(a))}.{draw(v4_part(b))}.{draw(v4_part(n & 0xFFFF))}",
        f"{draw(v4_part(a))}.{draw(v4_part(b))}.{draw(v4_part(c))}.{draw(v4_part(d))}",
        f"{dotted}.",
        f"[::ffff:{dotted}]",
        f"[::FFFF:{n >> 16:X}:{n & 0xFFFF:x}]",
        f"[0:0:0:0:0:ffff:{n >> 16:x}:{n & 0xFFFF:x}]",
        f"[64:ff9b::{dotted}]",
        f"[2002:{n >> 16:x}:{n & 0xFFFF:x}::1]",
    ]
    return [f"http://{host}/" for host in hosts]


@settings(max_examples=300)
@given(st.sampled_from(PRIVATE_V4).flatmap(lambda net: st.integers(net[0], net[0] + 2 ** (32 - net[1]) - 1)), st.data())
def test_every_spelling_of_an_internal_ipv4_address_is_refused(n: int, data: st.DataObject) -> None:
    expected = address_refusal(IPv4Address(n), DEFAULT)
    assert expected is not None
    for url in data.draw(spellings(n)):
        assert rule(url) == expected.rule, url


@settings(max_examples=300)
@given(st.integers(0x08000000, 0x08FFFFFF), st.data())
def test_every_spelling_of_a_public_ipv4_address_is_allowed(n: int, data: st.DataObject) -> None:
    for url in data.draw(spellings(n)):
        assert rule(url) is None, url
    # The deprecated IPv4-compatible form (::a.b.c.d) sits in reserved ::/96 and is refused outright.
    assert rule(f"http://[::{IPv4Address(n)}]/") == "urls.private_address"


@settings(max_examples=300)
@given(st.integers(0, 2**32 - 1), st.data())
def test_any_spelling_gets_the_decision_of_its_canonical_address(n: int, data: st.DataObject) -> None:
    expected = address_refusal(ip_address(n), DEFAULT)
    for url in data.draw(spellings(n)):
        assert rule(url) == (None if expected is None else expected.rule), url
