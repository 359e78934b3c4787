"""Which address a request is attributed to (rate limits, audit)."""

from __future__ import annotations

from uzo_api.client_address import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.1", "192.168.0.0/16"])


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", "1.2.3.4", ()) == "127.0.0.1"
    assert client_address("127.0.0.1", "1.2.3.4", parse_networks([])) == "127.0.0.1"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    assert client_address("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    # the client may prepend anything; our proxies append what they saw
    assert client_address("10.0.0.1", "6.6.6.6, 198.51.100.7, 192.168.1.2", PROXIES) == (
        "198.51.100.7"
    )
    assert client_address("10.0.0.1", "198.51.100.7", PROXIES) == "198.51.100.7"
    assert client_address("10.0.0.1", "[2001:db8::1]:443", PROXIES) == "2001:db8::1"


def test_garbage_from_a_trusted_proxy_falls_back_to_the_peer() -> None:
    assert client_address("10.0.0.1", "not-an-ip", PROXIES) == "10.0.0.1"
    assert client_address(None, "1.2.3.4", PROXIES) == "unknown"
