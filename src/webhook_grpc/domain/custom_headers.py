"""Custom request headers of a subscription (SPEC §11): which a subscriber may add.

Refused, whatever their case: the headers the service itself sends on every delivery (SPEC §4:
the signatures, `webhook-*`, `X-Webhook-*`, `User-Agent`, `Content-Type`, and the W3C trace
context `traceparent` and `tracestate`), the ones that frame
the request (`Host`, `Content-Length`, `Content-Encoding`, `Expect`) and hop-by-hop headers
(RFC 9110 §7.6.1), which a proxy would strip or act on. A consumer could otherwise be handed a
forged signature, or a body it cannot parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from .errors import InvalidArgument

MAX_HEADERS: Final = 10
MAX_NAME_CHARS: Final = 128
MAX_VALUE_CHARS: Final = 4096

_RESERVED: Final = frozenset(
    {
        # sent by the service on every delivery
        "content-type",
        "user-agent",
        # the publisher's trace context (W3C Trace Context), sent on by the service
        "traceparent",
        "tracestate",
        # framing
        "host",
        "content-length",
        "content-encoding",
        "expect",
        # hop-by-hop
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_RESERVED_PREFIXES: Final = ("webhook-", "x-webhook-", "proxy-")

# RFC 9110 §5.6.2: token = 1*tchar.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5 field-value, restricted to ASCII: visible characters, with single spaces or tabs
# inside. No CR, LF or NUL (they would split or end the header), and no obs-text, which clients
# encode differently.
_VALUE: Final = re.compile(r"(?:[\x21-\x7e](?:[ \t]*[\x21-\x7e])*)?")


def validate_custom_headers(headers: Mapping[str, str], field: str = "headers") -> dict[str, str]:
    """The headers as given, when every one may be sent; else InvalidArgument naming the header
    (`headers["Host"]`). Names are compared without case, so two that differ only in case are
    refused too."""
    if len(headers) > MAX_HEADERS:
        raise InvalidArgument(field, f"at most {MAX_HEADERS} custom headers")
    seen: dict[str, str] = {}
    for name, value in headers.items():
        path = f"{field}[{json.dumps(name[:MAX_NAME_CHARS], ensure_ascii=False)}]"
        why = _refusal(name) or _value_refusal(value)
        if why is not None:
            raise InvalidArgument(path, why)
        lowered = name.lower()
        if lowered in seen:
            raise InvalidArgument(path, f"repeats {seen[lowered]!r} (names ignore case)")
        seen[lowered] = name
    return dict(headers)


def is_reserved_header(name: str) -> bool:
    """Whether the service refuses `name` as a custom header (it sets or frames it itself)."""
    lowered = name.lower()
    return lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIXES)


def _refusal(name: str) -> str | None:
    if len(name) > MAX_NAME_CHARS:
        return f"a header name is at most {MAX_NAME_CHARS} characters"
    if not _TOKEN.fullmatch(name):
        return "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    if is_reserved_header(name):
        return "reserved: the service sets this header itself, or it controls the connection"
    return None


def _value_refusal(value: str) -> str | None:
    if len(value) > MAX_VALUE_CHARS:
        return f"a header value is at most {MAX_VALUE_CHARS} characters"
    if not _VALUE.fullmatch(value):
        return (
            "a header value holds printable ASCII only (no CR, LF, NUL or other control "
            "characters, no leading or trailing whitespace)"
        )
    return None
