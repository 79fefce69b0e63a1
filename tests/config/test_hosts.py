"""Host spellings and host patterns read one way, whether the config or the URL constraint reads them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from bastion.config.hosts import host_pattern, parse_host
from bastion.config.load import parse_config
from bastion.errors import ConfigError


@pytest.mark.parametrize(
    ("written", "host"),
    [
        ("Example.COM.", "example.com"),
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("\uff45xample.com", "example.com"),  # a fullwidth letter maps to ASCII
        ("2130706433", IPv4Address("127.0.0.1")),
        ("0x7f.1", IPv4Address("127.0.0.1")),
        ("0177.0.0.1", IPv4Address("127.0.0.1")),
        ("[fe80::1%25eth0]", IPv6Address("fe80::1")),
    ],
)
def test_a_host_is_read_as_a_browser_reads_it(written: str, host: str | IPv4Address | IPv6Address) -> None:
    assert parse_host(written) == host


@pytest.mark.parametrize("written", ["", "exa mple.com", "a..b", "1.2.3.256", "[::1", "[::1%bad zone]", "x" * 254])
def test_what_is_neither_a_name_nor_an_address_is_no_host(written: str) -> None:
    assert parse_host(written) is None


def test_patterns_come_out_in_normal_form() -> None:
    written = ("Example.COM.", "*.B\u00fccher.example", "0x7f.1", "[::1]", "::2")
    normal = ("example.com", "*.xn--bcher-kva.example", "127.0.0.1", "::1", "::2")
    assert tuple(host_pattern(pattern) for pattern in written) == normal


@pytest.mark.parametrize("pattern", ["*", "", "exa mple.com", "*.1.2.3.4", "http://x.com", "1.2.3.4:80", "a..b"])
def test_a_pattern_that_is_not_a_host_is_refused_by_name(pattern: str) -> None:
    with pytest.raises(ValueError, match="not a host pattern") as raised:
        host_pattern(pattern)
    assert repr(pattern) in str(raised.value)


def test_the_config_refuses_a_host_pattern_the_url_constraint_could_not_read() -> None:
    toml = (
        '[servers.web]\ncommand = "x"\n[servers.web.urls]\nallow_hosts = ["ok.example"]\ndeny_hosts = ["*.1.2.3.4"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(toml, Path("bastion.toml"))
    [problem] = raised.value.problems
    assert problem.location == "servers.web.urls"
    assert "'*.1.2.3.4'" in problem.message
