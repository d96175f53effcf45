"""Subscription filters: CEL expressions over the projected event (SPEC §11).

A filter sees four variables, `type`, `entity_id`, `data` and `previous` (an empty map when the
event has none), taken from the event AFTER projection, so it can never test a field that the
privacy allowlist removed. Filters are type-checked when a subscription is created or updated
(errors name line and column) and compiled once per source text (`compile_filter` keeps the
most recent ones). Evaluation never raises: an expression that fails on an event (a missing
field, a string that is not a number) or that yields something other than `true` means the
event does not match, as CEL's own `has()` guards intend; the event stays in the feed.

The library is cel-expr-python, the CEL team's wrapper of the C++ implementation (the
comparison with the other candidates is in docs/CEL_FILTERS.md).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any, Final

from cel_expr_python import cel

from .errors import InvalidArgument
from .filter_limits import cost_breach
from .models import Event

log = logging.getLogger(__name__)

FILTER_FIELD: Final = "filter"
COMPILED_FILTERS_KEPT: Final = 1024

# CEL has a built-in identifier `type` (the type of types), which a plain variable declaration
# cannot shadow. Declaring the variables inside a container makes the checker resolve `type` to
# `event.type` first, while `type(x)` keeps working.
_CONTAINER: Final = "event"
_DYN_MAP: Final = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
_ENV: Final = cel.NewEnv(
    container=_CONTAINER,
    variables={
        f"{_CONTAINER}.type": cel.Type.STRING,
        f"{_CONTAINER}.entity_id": cel.Type.STRING,
        f"{_CONTAINER}.data": _DYN_MAP,
        f"{_CONTAINER}.previous": _DYN_MAP,
    },
)
_ACCEPTED_RESULTS: Final = frozenset({cel.Type.BOOL.name(), cel.Type.DYN.name()})
_POSITION: Final = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")
_STATUS_NOISE: Final = re.compile(r"^[A-Z_]+: (?:ERROR: <input>:-?\d+:-?\d+: )?| \[[A-Z_]+\]$")


class FilterInput:
    """An event's variables, converted for CEL once and evaluated by many filters."""

    __slots__ = ("_activation",)

    def __init__(self, event: Event) -> None:
        variables = {
            f"{_CONTAINER}.type": event.type,
            f"{_CONTAINER}.entity_id": event.entity_id,
            f"{_CONTAINER}.data": event.data,
            f"{_CONTAINER}.previous": event.previous or {},
        }
        try:
            self._activation: Any = _ENV.Activation(variables)
        except Exception:  # a value CEL cannot represent (an int beyond 64 bits)
            log.debug("event %s cannot be given to filters", event.id, exc_info=True)
            self._activation = None

    def evaluate(self, expression: Any) -> Any:
        """The expression's value on this event; None when the event could not be converted."""
        if self._activation is None:
            return None
        return expression.eval(self._activation).value()


class EventFilter:
    """A compiled filter; immutable, so one instance serves every subscription with that text."""

    __slots__ = ("_expression", "source")

    def __init__(self, source: str, expression: Any) -> None:
        self.source = source
        self._expression = expression

    def matches(self, event: Event | FilterInput) -> bool:
        """Whether the (projected) event passes; False when evaluation fails on it."""
        variables = event if isinstance(event, FilterInput) else FilterInput(event)
        try:
            result = variables.evaluate(self._expression)
        except Exception:  # the library raises for values it cannot convert back
            return False
        # An evaluation error comes back as a value (not an exception); only `true` matches.
        return result is True

    def __repr__(self) -> str:
        return f"EventFilter({self.source!r})"


@functools.lru_cache(maxsize=COMPILED_FILTERS_KEPT)
def compile_filter(source: str) -> EventFilter:
    """Check and compile `source`; InvalidArgument("filter", "line L, column C: why") when it
    does not parse, does not type-check, does not yield a bool, or is too costly."""
    if not source.strip():
        raise InvalidArgument(FILTER_FIELD, "a filter cannot be blank (leave it unset instead)")
    breach = cost_breach(source)
    if breach is not None:
        raise _invalid_at(source, breach.offset, breach.reason)
    try:
        expression = _ENV.compile(source)
    except Exception as error:  # the library raises RuntimeError with the checker's report
        raise _compile_error(str(error)) from None
    if expression.return_type().name() not in _ACCEPTED_RESULTS:
        raise _invalid_at(
            source, 0, f"a filter must yield a bool, not {expression.return_type().name()}"
        )
    return EventFilter(source, expression)


def check_filter(source: str, field: str = FILTER_FIELD) -> EventFilter:
    """`compile_filter`, with errors naming `field` (e.g. "subscription.filter" on update)."""
    try:
        return compile_filter(source)
    except InvalidArgument as error:
        if field == FILTER_FIELD:
            raise
        raise InvalidArgument(field, error.description) from None


def _compile_error(report: str) -> InvalidArgument:
    found = _POSITION.search(report)
    if found is None:  # limits of the parser itself (nesting depth) come without a position
        first_line = report.splitlines()[0] if report else ""
        return InvalidArgument(FILTER_FIELD, _STATUS_NOISE.sub("", first_line) or "invalid")
    line, column = int(found.group(1)), int(found.group(2))
    why = found.group(3).removesuffix(f" (in container '{_CONTAINER}')")
    return InvalidArgument(FILTER_FIELD, f"line {line}, column {column}: {why}")


def _invalid_at(source: str, offset: int, why: str) -> InvalidArgument:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return InvalidArgument(FILTER_FIELD, f"line {line}, column {column}: {why}")
