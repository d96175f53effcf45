from __future__ import annotations

import ipaddress

import pytest

from webhook_grpc.domain.errors import InvalidArgument
from webhook_grpc.domain.targets import (
    EndpointUrl,
    is_forbidden_address,
    is_forbidden_host_address,
    literal_ip,
    validate_endpoint_url,
)


@pytest.mark.parametrize(
    "address",
    [
        # loopback
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        # private
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "fc00::1",
        "fd12:3456::1",
        # link-local and cloud metadata
        "169.254.0.1",
        "169.254.169.254",
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",
        # unspecified and "this network"
        "0.0.0.0",
        "0.1.2.3",
        "::",
        # carrier-grade NAT
        "100.64.0.1",
        "100.127.255.255",
        # multicast, reserved, broadcast
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        # other special-purpose ranges
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "2001:db8::1",
        "2001::1",  # Teredo
        "100::1",  # discard-only
        "fec0::1",  # deprecated site-local
        "64:ff9b:1::1",  # local-use NAT64
        # IPv4 embedded in IPv6
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    ],
)
def test_forbidden_addresses(address: str) -> None:
    ip = literal_ip(address)
    assert ip is not None
    assert is_forbidden_address(ip)
    assert is_forbidden_host_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",  # just below carrier-grade NAT
        "100.128.0.0",  # just above
        "172.15.255.255",  # just below 172.16/12
        "172.32.0.0",  # just above
        "169.253.255.255",
        "192.169.0.1",
        "11.0.0.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001:81c::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_forbidden_address(ip)
    assert not is_forbidden_host_address(address)


def test_unparsable_resolver_address_counts_as_forbidden() -> None:
    assert is_forbidden_host_address("not-an-address")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("127.0.0.1.", "127.0.0.1"),
        # Unusual IPv4 forms inet_aton accepts.
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
    ],
)
def test_literal_ip(host: str, expected: str) -> None:
    ip = literal_ip(host)
    assert ip is not None
    assert ip == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", ["example.com", "localhost", "hooks.example.test", "", "[]"])
def test_names_are_not_literal_ips(host: str) -> None:
    assert literal_ip(host) is None


@pytest.mark.parametrize(
    ("url", "allow_http", "expected"),
    [
        ("https://example.com/hook", False, EndpointUrl("https", "example.com", 443)),
        ("https://Example.COM:8443/a?b=c", False, EndpointUrl("https", "example.com", 8443)),
        ("HTTPS://example.com", False, EndpointUrl("https", "example.com", 443)),
        ("http://example.com/hook", True, EndpointUrl("http", "example.com", 80)),
        ("https://[2606:4700::1111]/x", False, EndpointUrl("https", "2606:4700::1111", 443)),
        ("https://127.0.0.1:9/x", False, EndpointUrl("https", "127.0.0.1", 9)),
        ("https://my_host.internal./x", False, EndpointUrl("https", "my_host.internal.", 443)),
        ("https://bücher.example/x", False, EndpointUrl("https", "bücher.example", 443)),
        ("https://e.com/" + "a" * (2048 - 14), False, EndpointUrl("https", "e.com", 443)),
    ],
)
def test_valid_urls(url: str, allow_http: bool, expected: EndpointUrl) -> None:
    assert validate_endpoint_url(url, allow_http) == expected


@pytest.mark.parametrize(
    ("url", "allow_http", "why"),
    [
        ("", True, "required"),
        ("/relative", True, "absolute"),
        ("example.com/hook", True, "absolute"),
        ("https:example.com", True, "absolute"),
        ("https:///path", True, "absolute"),
        ("ftp://example.com/x", True, "scheme"),
        ("javascript://example.com/x", True, "scheme"),
        ("http://example.com/x", False, "http"),
        ("https://user:pass@example.com/x", False, "credentials"),
        ("https://user@example.com/x", False, "credentials"),
        ("https://example.com/x#frag", False, "fragment"),
        ("https://example.com/x#", False, "fragment"),
        ("https://e.com/" + "a" * (2048 - 13), False, "longer than"),
        ("https://exa mple.com/", False, "spaces"),
        ("https://example.com/\n", False, "control"),
        ("https://example.com\\@evil.com/", False, "backslash"),
        ("https://example.com:99999/", False, "valid URL"),
        ("https://example.com:0/", False, "port 0"),
        ("https://[nope]/", False, "valid URL"),
        ("https://exa%6dple.com/", False, "host"),
        ("https://a..b/", False, "host"),
        ("https://:443/", False, "host"),
    ],
)
def test_invalid_urls(url: str, allow_http: bool, why: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_endpoint_url(url, allow_http, field="subscription.url")
    assert caught.value.field == "subscription.url"
    assert why in caught.value.description


def test_default_field_is_url() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_endpoint_url("nope", allow_http=False)
    assert caught.value.field == "url"
