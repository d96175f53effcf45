"""Bounds on what a subscription filter may cost, checked on its source before compiling.

The CEL library has no evaluation cost limit, and filters run on the publishing path for every
event of the tenant. CEL itself is not Turing-complete: without comprehensions, evaluation is
linear in the expression size and the event size. Comprehensions (`all`, `exists`,
`exists_one`, `map`, `filter`) are where cost multiplies: one nested in another is quadratic in
the event, and so is a body that walks the event again (`data.lines.all(l, data.lines...)`).
So a comprehension may not contain another, and its body may use its own variable, literals,
`type` and `entity_id`, but not `data` or `previous`; then a filter costs at most about
(source length x event size). Filters are also short: a few predicates, not a program.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_FILTER_CHARS: Final = 2048
MAX_COMPREHENSIONS: Final = 4

# String literals, left to right, so a quote inside one never starts another: raw and
# triple-quoted forms first, since a raw string's backslash escapes nothing.
_STRING_LITERAL: Final = re.compile(
    r"""[rR][bB]?(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")"""
    r"""|[bB]?[rR](?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")"""
    r"""|[bB]?(?:'''(?:\\.|.)*?'''|\"\"\"(?:\\.|.)*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
    re.DOTALL,
)
_COMPREHENSION: Final = re.compile(r"\.\s*(all|exists_one|exists|map|filter)\s*\(")
_EVENT_WALK: Final = re.compile(r"(?<![.\w])(data|previous)\b")


@dataclass(frozen=True)
class LimitBreach:
    """Why a filter is refused, and where (0-based offset into the source)."""

    offset: int
    reason: str


def cost_breach(source: str) -> LimitBreach | None:
    """The first rule `source` breaks, or None. Only meaningful on text that also compiles:
    an unbalanced parenthesis is left to the compiler's own error."""
    if len(source) > MAX_FILTER_CHARS:
        return LimitBreach(MAX_FILTER_CHARS, f"a filter is at most {MAX_FILTER_CHARS} characters")
    code = _blank_strings(source)
    spans = [
        (match.start(1), match.end(), _closing_paren(code, match.end() - 1))
        for match in _COMPREHENSION.finditer(code)
    ]
    if len(spans) > MAX_COMPREHENSIONS:
        return LimitBreach(
            spans[MAX_COMPREHENSIONS][0],
            f"a filter has at most {MAX_COMPREHENSIONS} comprehensions (all, exists, map, ...)",
        )
    for name_at, body_from, body_to in spans:
        if any(body_from <= other < body_to for other, _, _ in spans):
            return LimitBreach(name_at, "a comprehension may not contain another one")
        walk = _EVENT_WALK.search(code, body_from, body_to)
        if walk:
            return LimitBreach(
                walk.start(),
                f"a comprehension's body may not read `{walk.group(1)}` (its cost would "
                "multiply); use the comprehension's own variable",
            )
    return None


def _blank_strings(source: str) -> str:
    """`source` with every string literal's content replaced by spaces (offsets kept)."""
    return _STRING_LITERAL.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', source)


def _closing_paren(code: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(code)):
        if code[index] == "(":
            depth += 1
        elif code[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(code)
