"""`[dns] nameservers`: URL hosts resolved by the DNS server the config names (a real one, on
loopback, in the test), every answer checked; a name that does not resolve is refused."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from bastion.config.model import DnsConfig
from bastion.policy.resolver import make_resolver
from bastion.policy.urls import Resolver, UrlRules, check_url_resolved, system_resolver

RECORDS = {
    "public.test.": ("A", "93.184.215.14"),
    "inside.test.": ("A", "10.0.0.5"),
    "meta.test.": ("A", "169.254.169.254"),
}


@pytest.fixture
def nameserver() -> Iterator[str]:
    """A DNS server on a loopback UDP port that knows three names and says NXDOMAIN to the rest."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            record = RECORDS.get(question.name.to_text())
            if record is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif dns.rdatatype.to_text(question.rdtype) == record[0]:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", record[0], record[1]))
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def rule(resolve: Resolver, url: str) -> str | None:
    refusal = check_url_resolved(url, UrlRules(), resolve)
    return None if refusal is None else refusal.rule


def test_the_configured_nameserver_answers_and_every_answer_is_checked(nameserver: str) -> None:
    resolve = make_resolver(DnsConfig(nameservers=(nameserver,), timeout=2))
    assert resolve("public.test") == ["93.184.215.14"]
    assert rule(resolve, "https://public.test/page") is None
    assert rule(resolve, "https://inside.test/admin") == "urls.private_address"
    assert rule(resolve, "https://meta.test/latest/") == "urls.metadata"
    assert rule(resolve, "https://missing.test/") == "urls.unresolvable"


def test_no_answer_in_time_is_unresolvable_not_allowed() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        resolve = make_resolver(DnsConfig(nameservers=(f"127.0.0.1:{silent.getsockname()[1]}",), timeout=0.3))
        assert rule(resolve, "https://public.test/") == "urls.unresolvable"
        assert rule(resolve, "https://93.184.215.14/") is None  # a literal address needs no DNS
    finally:
        silent.close()


def test_without_nameservers_the_system_resolver_is_used() -> None:
    assert make_resolver(DnsConfig()) is system_resolver


@pytest.mark.parametrize("bad", ["dns.example", "1.1.1.1:x:y", ""])
def test_a_nameserver_must_be_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="must be an IP address"):
        DnsConfig(nameservers=(bad,))
