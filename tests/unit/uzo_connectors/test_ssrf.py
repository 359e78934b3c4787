"""SSRF protection (uzo_connectors/ssrf.py): odd address spellings, embedded IPv4, DNS names
that resolve inside, allowlists, URL schemes."""

from __future__ import annotations

import ipaddress

import pytest

from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.ssrf import EndpointPolicy, classify, resolve


def fake_dns(table: dict[str, list[str]]) -> EndpointPolicy:
    def resolver(host: str) -> list[str]:
        if host in table:
            return table[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise BlockedEndpointError(f"cannot resolve host {host!r}") from None

    return EndpointPolicy(resolver=resolver)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",  # decimal 127.0.0.1
        "0x7f000001",  # hex
        "0x7f.0.0.1",
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "0",  # 0.0.0.0
        "169.254.169.254",  # cloud metadata
        "2852039166",  # decimal 169.254.169.254
        "0xa9fea9fe",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",  # CGNAT
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::7f00:1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "fe80::1",
        "fc00::1",
        "224.0.0.1",
        "localhost",
    ],
)
def test_internal_spellings_are_refused_by_the_real_resolver(host: str) -> None:
    with pytest.raises(BlockedEndpointError):
        EndpointPolicy().check_host(host)


def test_metadata_address_is_named_in_the_error() -> None:
    with pytest.raises(BlockedEndpointError, match=r"169\.254\.169\.254 \(link-local"):
        EndpointPolicy().check_host("169.254.169.254")


def test_dns_names_resolving_inside_are_refused() -> None:
    policy = fake_dns(
        {
            "rebind.example": ["93.184.216.34", "127.0.0.1"],  # one bad address is enough
            "meta.example": ["169.254.169.254"],
            "v6.example": ["::ffff:10.0.0.5"],
            "public.example": ["93.184.216.34", "2606:2800:220:1::"],
        }
    )
    for host in ("rebind.example", "meta.example", "v6.example"):
        with pytest.raises(BlockedEndpointError, match=host):
            policy.check_host(host)
    assert [str(a) for a in policy.check_host("public.example")] == [
        "93.184.216.34",
        "2606:2800:220:1::",
    ]
    assert policy.check_host("PUBLIC.example.") == policy.check_host("public.example")


def test_switches_and_allowlists() -> None:
    table = {"db.internal": ["10.1.2.3"], "other.internal": ["10.9.9.9"]}
    resolver = fake_dns(table).resolver
    loopback = EndpointPolicy(allow_loopback=True, resolver=resolver)
    loopback.check_host("127.0.0.1")
    with pytest.raises(BlockedEndpointError):
        loopback.check_host("169.254.169.254")  # loopback only, never metadata
    private = EndpointPolicy(allow_private=True, resolver=resolver)
    private.check_host("db.internal")
    with pytest.raises(BlockedEndpointError):
        private.check_host("127.0.0.1")
    by_host = EndpointPolicy(allowed=("db.internal",), resolver=resolver)
    by_host.check_host("DB.internal")
    with pytest.raises(BlockedEndpointError):
        by_host.check_host("other.internal")
    by_cidr = EndpointPolicy(allowed=("10.1.0.0/16", "not a cidr"), resolver=resolver)
    by_cidr.check_host("db.internal")
    by_cidr.check_host("::ffff:10.1.0.9")
    with pytest.raises(BlockedEndpointError):
        by_cidr.check_host("other.internal")
    assert EndpointPolicy.permissive_for_tests().allow_loopback


def test_url_checks_scheme_and_host() -> None:
    policy = fake_dns({"api.example": ["93.184.216.34"]})
    assert policy.check_url("https://api.example/v1") == "https://api.example/v1"
    for url in ("file:///etc/passwd", "gopher://api.example/", "ftp://api.example/x"):
        with pytest.raises(BlockedEndpointError, match="scheme"):
            policy.check_url(url)
    policy.check_url("ftp://api.example/x", schemes=("ftp",))
    with pytest.raises(BlockedEndpointError, match="no host"):
        policy.check_url("http:///path")
    with pytest.raises(BlockedEndpointError, match="no host") as refused:
        policy.check_url("http://user:s3cr3t@/path")
    assert "s3cr3t" not in str(refused.value)
    for url in (
        "http://127.0.0.1:8080/",
        "http://[::ffff:7f00:1]/",
        "http://user:pw@169.254.169.254/latest/meta-data/",
        "http://2130706433/",
    ):
        with pytest.raises(BlockedEndpointError):
            EndpointPolicy().check_url(url)


def test_unresolvable_and_empty_hosts() -> None:
    with pytest.raises(BlockedEndpointError, match="empty host"):
        EndpointPolicy().check_host(" ")
    with pytest.raises(BlockedEndpointError, match="cannot resolve"):
        resolve("no-such-host.invalid")


def test_classify_public_and_reserved() -> None:
    assert classify(ipaddress.ip_address("8.8.8.8")) is None
    assert classify(ipaddress.ip_address("240.0.0.1")) in {"private", "reserved"}
    assert classify(ipaddress.ip_address("::")) == "unspecified"
