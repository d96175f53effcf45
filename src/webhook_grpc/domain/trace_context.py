"""A publisher's W3C trace context (Trace Context Level 1: `traceparent`, `tracestate`), as an
event keeps it from its publish to its deliveries.

Both come from the publisher's request, so they are checked before they are stored: a
`traceparent` that is not version 00's form, or whose trace or parent id is all zeros, is
dropped, as the W3C recommendation tells a receiver to do (a new trace starts instead); a
`tracestate` with characters outside its grammar or past its 32 members and 512 characters is
dropped on its own, keeping the `traceparent`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
HEADERS: Final = frozenset({TRACEPARENT, TRACESTATE})

MAX_TRACESTATE_CHARS: Final = 512
MAX_TRACESTATE_MEMBERS: Final = 32

_TRACEPARENT: Final = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
# A list-member is key=value (W3C §3.3.1.3); values are printable ASCII but ',' and '='.
_KEY: Final = r"[a-z0-9][a-z0-9_\-*/]{0,255}(?:@[a-z][a-z0-9_\-*/]{0,13})?"
_VALUE: Final = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER: Final = re.compile(f"{_KEY}={_VALUE}")
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16


@dataclass(frozen=True)
class TraceContext:
    """A valid `traceparent`, with the `tracestate` that came with it ("" for none)."""

    traceparent: str
    tracestate: str = ""

    @property
    def trace_id(self) -> str:
        return self.traceparent[3:35]

    @property
    def span_id(self) -> str:
        return self.traceparent[36:52]

    def headers(self) -> dict[str, str]:
        """As request headers (or gRPC metadata)."""
        if self.tracestate:
            return {TRACEPARENT: self.traceparent, TRACESTATE: self.tracestate}
        return {TRACEPARENT: self.traceparent}

    def text(self) -> str:
        """The stored form: the traceparent, and the tracestate on a second line (neither can
        hold a line break)."""
        return f"{self.traceparent}\n{self.tracestate}" if self.tracestate else self.traceparent

    @classmethod
    def from_text(cls, text: str | None) -> TraceContext | None:
        if not text:
            return None
        traceparent, _, tracestate = text.partition("\n")
        return cls.parse(traceparent, tracestate)

    @classmethod
    def parse(cls, traceparent: str | None, tracestate: str | None = None) -> TraceContext | None:
        """The context these header values give, or None when `traceparent` is not valid."""
        if not traceparent:
            return None
        traceparent = traceparent.strip()
        found = _TRACEPARENT.fullmatch(traceparent)
        if found is None or found[1] == _ZERO_TRACE or found[2] == _ZERO_SPAN:
            return None
        return cls(traceparent, _valid_tracestate(tracestate or ""))

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, str | bytes]]) -> TraceContext | None:
        """From gRPC invocation metadata (keys are lower case there)."""
        traceparent = tracestate = ""
        for key, value in metadata:
            if key == TRACEPARENT and isinstance(value, str):
                traceparent = value
            elif key == TRACESTATE and isinstance(value, str):
                tracestate = value
        return cls.parse(traceparent, tracestate)


def _valid_tracestate(tracestate: str) -> str:
    if not tracestate or len(tracestate) > MAX_TRACESTATE_CHARS:
        return ""
    members = [member.strip(" \t") for member in tracestate.split(",")]
    members = [member for member in members if member]
    if len(members) > MAX_TRACESTATE_MEMBERS or not all(_MEMBER.fullmatch(m) for m in members):
        return ""
    return ",".join(members)
