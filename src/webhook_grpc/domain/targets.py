"""Endpoint URL rules and target address classification (SPEC §3): pure, no I/O.

A webhook target must not reach the service's own network: loopback, private, link-local
(cloud metadata), and every other special-purpose range, also when written as an IPv4-mapped,
6to4 or NAT64 IPv6 address or in an unusual IPv4 notation such as `0x7f.1`."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from .errors import InvalidArgument

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2048
DEFAULT_PORTS: Final = {"https": 443, "http": 80}

_LABELS = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f\\]")

# Not globally reachable (IANA special-purpose registry), so never a webhook target.
_FORBIDDEN_V4: Final = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", including the unspecified 0.0.0.0
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, including metadata 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including the broadcast 255.255.255.255
    )
)
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_NAT64_V6: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR_V6: Final = ipaddress.IPv6Network("2002::/16")
# Inside 2000::/3 but not globally reachable. Everything outside 2000::/3 (loopback,
# unspecified, fc00::/7 unique-local incl. AWS metadata fd00:ec2::254, fe80::/10 link-local,
# ff00::/8 multicast, reserved) is refused anyway.
_FORBIDDEN_V6: Final = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, including Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)


@dataclass(frozen=True)
class EndpointUrl:
    """The parts of a valid endpoint URL that the target checks need."""

    scheme: str
    host: str
    """Lowercase, without IPv6 brackets."""
    port: int
    """The explicit port, or the scheme's default."""


def validate_endpoint_url(url: str, allow_http: bool, field: str = "url") -> EndpointUrl:
    """Check the endpoint URL rules; raises InvalidArgument(field, ...) naming the broken one."""
    if not url:
        raise InvalidArgument(field, "is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidArgument(field, f"is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL_OR_SPACE.search(url):
        raise InvalidArgument(field, "must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidArgument(field, f"is not a valid URL: {error}") from None
    schemes = "https:// (or http://)" if allow_http else "https://"
    if not parts.scheme or not parts.netloc:
        raise InvalidArgument(field, f"must be an absolute {schemes} URL")
    if parts.scheme == "http" and not allow_http:
        raise InvalidArgument(
            field,
            "plain http:// is not allowed (allow_http_targets is off; `webhook-grpc serve --dev` "
            "allows it for development); use https://",
        )
    if parts.scheme not in DEFAULT_PORTS:
        raise InvalidArgument(field, f"scheme {parts.scheme!r} is not allowed; use {schemes}")
    if "@" in parts.netloc:
        raise InvalidArgument(field, "must not contain credentials (user:password@)")
    if "#" in url:
        raise InvalidArgument(field, "must not contain a fragment (#...)")
    host = parts.hostname or ""
    if not host:
        raise InvalidArgument(field, "has no host")
    if literal_ip(host) is None and not _valid_hostname(host):
        raise InvalidArgument(field, f"host {host!r} is not a valid host name")
    if port == 0:
        raise InvalidArgument(field, "port 0 is not a valid port")
    return EndpointUrl(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme])


def _valid_hostname(host: str) -> bool:
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return False
    return bool(_LABELS.fullmatch(ascii_host.lower()))


def literal_ip(host: str) -> IPAddress | None:
    """The address `host` names literally, or None for a name that needs resolving.

    Accepts `[v6]` brackets, zone ids and a trailing dot, and, conservatively, every IPv4 form
    the C library's inet_aton accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`), since resolvers
    and HTTP clients may read them that way.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.removesuffix(".")
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text.isascii() or not text[0].isalnum():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def is_forbidden_address(ip: IPAddress) -> bool:
    """True for addresses a webhook must never reach unless private targets are allowed."""
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _FORBIDDEN_V4)
    ip = ipaddress.IPv6Address(int(ip))  # drop any zone id
    if ip.ipv4_mapped is not None:
        return is_forbidden_address(ip.ipv4_mapped)
    if ip in _NAT64_V6:
        return is_forbidden_address(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    if ip.sixtofour is not None:
        return is_forbidden_address(ip.sixtofour)
    if ip not in _GLOBAL_UNICAST_V6:
        return True
    return any(ip in net for net in _FORBIDDEN_V6)


def is_forbidden_host_address(address: str) -> bool:
    """`is_forbidden_address` for an address string from a resolver; unparsable counts as
    forbidden."""
    ip = literal_ip(address)
    return ip is None or is_forbidden_address(ip)
